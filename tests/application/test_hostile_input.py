"""Hostile ids and text: each is stored faithfully (and read back byte for byte) or refused
with a code, never half-applied; SQL is only ever built with parameters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coursebook.domain.commands import read_command_id
from coursebook.domain.ids import command_uuid, course_uuid
from coursebook.errors import Code, Rejected
from coursebook.service.application import Coursebook
from tests.builders import Clinic, command, day, refusals_added, screening

SQL_ID = "C'); DROP TABLE stored_events; --"
QUOTED_REF = 'P" OR "1"="1'
CONTROL_TEXT = "line one\nline two\ttab \x1b[31mred\x1b[0m \x7f bell\x07 é 漢字 🙂"
LONG_TEXT = "x" * 2000


def count(app: Coursebook) -> int:
    return len(Clinic(app, staff=False).notifications())


def refused(app: Coursebook, body: dict[str, Any], code: Code) -> None:
    """Refused with `code`, recording nothing but the refusal (remembered under a
    command_id that can be read)."""
    before = Clinic(app, staff=False).notifications()
    with pytest.raises(Rejected) as info:
        app.execute(body)
    assert info.value.code == code, info.value
    try:
        remembered = [command_uuid(read_command_id(body))]
    except Rejected:
        remembered = []
    assert refusals_added(before, Clinic(app, staff=False).notifications()) == remembered


def test_hostile_ids_and_texts_are_stored_faithfully(clinic: Clinic, app: Coursebook) -> None:
    clinic.register("dr-ñ'\"\\;--", "physician")
    patient = {"name": CONTROL_TEXT[:200], "birth_date": "1980-02-29"}
    clinic.open(SQL_ID, patient_ref=QUOTED_REF, patient=patient)
    clinic.consult(SQL_ID, actor="dr-ñ'\"\\;--", notes=LONG_TEXT,
                   allergies=["'; DELETE FROM coursebook_keys; --"],
                   medications=[CONTROL_TEXT])
    clinic.give(SQL_ID, actor="dr-ñ'\"\\;--")
    clinic.react(SQL_ID, severity=1, notes=CONTROL_TEXT, actor="dr-ñ'\"\\;--")

    document = clinic.course(SQL_ID)
    assert document["course_id"] == SQL_ID
    assert document["patient_ref"] == QUOTED_REF
    assert document["patient"] == patient
    course: Any = app.repository.get(course_uuid(SQL_ID))
    answers = course.state.screening.data
    assert answers["notes"] == LONG_TEXT
    assert answers["medications"] == [CONTROL_TEXT]
    assert answers["allergies"] == ["'; DELETE FROM coursebook_keys; --"]
    assert [h["actor"] for h in app.get_history(SQL_ID)][1:] == ["dr-ñ'\"\\;--"] * 3
    # The erasure of a quoted patient_ref works the same way.
    clinic.run("erase_patient", at=day(5), actor="dpo'--", patient_ref=QUOTED_REF,
               reason="request ' OR 1=1")
    assert clinic.course(SQL_ID)["patient"] == "[erased]"


@pytest.mark.parametrize(("field", "value"), [
    ("course_id", "C" * 129),                 # too long an id
    ("course_id", "C1\nC2"),                  # control character in an id
    ("course_id", ""),
    ("patient_ref", "P\x00"),
    ("indication", "skin_rejuvenation'; --"),
])
def test_hostile_open_course_fields_are_refused_invalid(app: Coursebook, field: str,
                                                        value: str) -> None:
    body = command("open_course", at=day(0), actor="admin", course_id="C1",
                   patient_ref="P1", indication="skin_rejuvenation")
    body[field] = value
    refused(app, body, Code.INVALID)


@pytest.mark.parametrize(("where", "value"), [
    ("name", "n" * 201),
    ("name", "nul\x00byte"),
    ("notes", "x" * 2001),
    ("notes", "\U0001f642" * 1_000_000),     # a megabyte-scale string
    ("notes", "nul\x00byte"),
])
def test_hostile_personal_text_is_refused_invalid(clinic: Clinic, app: Coursebook,
                                                   where: str, value: str) -> None:
    if where == "name":
        body = command("open_course", at=day(0), actor="admin", course_id="C9",
                       patient_ref="P9", indication="skin_rejuvenation",
                       patient={"name": value, "birth_date": "1980-01-01"})
    else:
        clinic.open()
        body = command("record_consultation", at=day(0), course_id="C1", consent=True,
                       screening=screening(notes=value))
    refused(app, body, Code.INVALID)


def test_command_ids_with_sql_or_spaces_are_refused(app: Coursebook) -> None:
    for command_id in ("x'; DROP TABLE tracking; --", "a b", "é", "x" * 129):
        body = command("open_course", at=day(0), actor="admin", command_id=command_id,
                       course_id="C1", patient_ref="P1", indication="skin_rejuvenation")
        refused(app, body, Code.INVALID)


def test_invalid_utf8_and_broken_lines_are_refused_and_the_file_goes_on(
        clinic: Clinic, app: Coursebook) -> None:
    good = command("open_course", at=day(0), actor="admin", course_id="C1",
                   patient_ref="P1", indication="skin_rejuvenation")
    lines = [b"\xff\xfe{\"command\": 1}", b"{\"command_id\": \"a\xc3\"}",
             b'{"command": "open_course", "command_id": "\\ud800"}',
             b"[1, 2]", b"\x00\x01\x02", b"{" * 5000, json.dumps(good).encode()]
    before = count(app)
    report = app.import_lines(b"\n".join(lines)).as_dict()
    assert report["applied"] == 1
    assert [(r["line"], r["code"]) for r in report["rejected"]] == [
        (n, "INVALID") for n in range(1, 7)]
    assert all(r["command_id"] is None for r in report["rejected"][:2])
    assert count(app) == before + 3  # the course, its patient record and the receipt
