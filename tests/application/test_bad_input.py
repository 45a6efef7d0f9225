"""Bad input through the import function: each bad line ends in a code and leaves the
store's content as it was but for the refusal remembered under its command_id (every
stored record compared before and after)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from coursebook.domain.ids import command_uuid
from coursebook.errors import Code
from tests.builders import Clinic, command, day, product, refusals_added, rejected, screening


def line(document: Any) -> bytes:
    return orjson.dumps(document)


def consult(**changes: Any) -> dict[str, Any]:
    body = command("record_consultation", at=day(0), command_id="consult-1",
                   course_id="C1", consent=True, screening=screening())
    body.update(changes)
    return body


def give(**changes: Any) -> dict[str, Any]:
    body = command("give_session", at=day(1), command_id="give-1", course_id="C1",
                   products=[product()], areas=["face"], dose_ml=2, anaesthetic=None)
    body.update(changes)
    return body


def without_answer(answer: str) -> dict[str, Any]:
    answers = screening()
    del answers[answer]
    return consult(screening=answers)


BAD_LINES: dict[str, tuple[bytes, str | None]] = {
    "not json": (b'{"command": "give_session", ', None),
    "trailing garbage": (line(give()) + b" x", None),
    "a json array": (b'[{"command": "give_session"}]', None),
    "a json string": (b'"give_session"', None),
    "a json number": (b"42", None),
    "json null": (b"null", None),
    "invalid utf-8": (b'{"command": "pause_course", "reason": "\xff\xfe"}', None),
    "a lone surrogate escape": (
        b'{"command_id": "s-1", "command": "pause_course", "at": "2026-09-01T09:00:00Z", '
        b'"actor": "dr-ada", "course_id": "C1", "reason": "\\ud800"}', None),
    "a naive timestamp": (line(give(at="2026-09-02T09:00:00")), "give-1"),
    "a naive planned_at": (line(command(
        "schedule_session", at=day(0), command_id="sch-1", course_id="C1",
        planned_at="2026-09-02T09:00:00")), "sch-1"),
    "an unknown top-level field": (line(give(colour="blue")), "give-1"),
    "an unknown screening field": (line(consult(screening={**screening(), "smoker": True})),
                                   "consult-1"),
    "an unknown product field": (line(give(products=[{**product(), "batch": "x"}])),
                                 "give-1"),
    "a missing screening answer": (line(without_answer("diabetes")), "consult-1"),
    "a missing allergies list": (line(without_answer("allergies")), "consult-1"),
    "a null screening answer": (line(consult(screening={**screening(), "pregnant": None})),
                                "consult-1"),
    "a string dose": (line(give(dose_ml="2")), "give-1"),
    "a boolean dose": (line(give(dose_ml=True)), "give-1"),
    "a boolean severity": (line(command(
        "report_reaction", at=day(2), command_id="r-1", course_id="C1", session_no=1,
        kind="redness", severity=True)), "r-1"),
    "an out-of-range dose": (line(give(dose_ml=20.5)), "give-1"),
    "a NaN literal": (b'{"command_id": "n-1", "command": "give_session", "dose_ml": NaN}',
                      None),
    "an Infinity dose": (line(give())[:-1] + b', "dose_ml": 1e999}', None),
    "a number beyond 64 bits": (line(give())[:-1] + b', "session_no": 99999999999999999999999}',
                                "give-1"),
    "a huge string": (line(consult(screening={**screening(), "notes": "x" * 2_000_000})),
                      "consult-1"),
    "an empty string": (line(command("pause_course", at=day(0), command_id="p-1",
                                     course_id="C1", reason="")), "p-1"),
    "a whitespace string": (line(command("pause_course", at=day(0), command_id="p-2",
                                         course_id="C1", reason=" \t ")), "p-2"),
    "a bad command_id": (line(give(command_id="has space")), "has space"),
    "a missing command_id": (line({k: v for k, v in give().items() if k != "command_id"}),
                             None),
    "a numeric command_id": (line(give(command_id=7)), None),
    "a wrong list type": (line(give(areas="face")), "give-1"),
    "an empty products list": (line(give(products=[])), "give-1"),
    "min above target": (line(command(
        "adjust_interval", at=day(0), command_id="adj-1", course_id="C1", min_days=20,
        target_days=10, max_days=30, reason="reasonable reason")), "adj-1"),
    "planned_at at the end of the calendar": (line(command(
        "schedule_session", at=day(2), command_id="sch-3", course_id="C1",
        planned_at="9999-12-31T23:00:00+00:00")), "sch-3"),
    "planned_at before at": (line(command(
        "schedule_session", at=day(2), command_id="sch-2", course_id="C1",
        planned_at=day(1))), "sch-2"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_a_bad_line_is_invalid_and_changes_nothing(clinic: Clinic, case: str) -> None:
    clinic.ready()
    data, command_id = BAD_LINES[case]
    before = clinic.notifications()
    report = clinic.app.import_lines(data + b"\n").as_dict()
    assert report["applied"] == 0
    assert report["duplicates"] == 0
    [entry] = report["rejected"]
    assert entry["line"] == 1
    assert entry["code"] == "INVALID"
    assert entry["command_id"] == command_id
    assert len(entry["message"]) < 300
    # Nothing but the refusal, remembered under a command_id that can be read.
    added = refusals_added(before, clinic.notifications())
    readable = command_id is not None and case != "a bad command_id"
    assert added == ([command_uuid(command_id)] if readable else [])


def test_an_unknown_command_is_unknown_command_and_changes_nothing(clinic: Clinic) -> None:
    before = clinic.notifications()
    report = clinic.app.import_lines(line(command("erase_everything", at=day(0)))).as_dict()
    assert [r["code"] for r in report["rejected"]] == ["UNKNOWN_COMMAND"]
    assert len(refusals_added(before, clinic.notifications())) == 1


def test_good_lines_around_bad_ones_are_applied_and_numbered_as_in_the_file(
        clinic: Clinic) -> None:
    data = b"\n".join([
        line(command("open_course", at=day(0, 8), actor="admin", course_id="C1",
                     patient_ref="P1", indication="cellulite")),
        b"",
        b"not json",
        b"   ",
        line(consult()),
        b"\xff",
        line(consult()),
        line(give(dose_ml=0)),
    ])
    report = clinic.app.import_lines(data).as_dict()
    assert report["applied"] == 2
    assert report["duplicates"] == 1
    assert [(r["line"], r["code"]) for r in report["rejected"]] == [
        (3, "INVALID"), (6, "INVALID"), (8, "INVALID")]


def test_a_byte_order_mark_and_crlf_line_ends_are_accepted(clinic: Clinic) -> None:
    lines = [line(command("open_course", at=day(0, 8), actor="admin", course_id="C1",
                          patient_ref="P1", indication="cellulite")), line(consult())]
    report = clinic.app.import_lines(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n").as_dict()
    assert report == {"applied": 2, "duplicates": 0, "rejected": []}
    assert clinic.course()["status"] == "active"


def test_a_byte_order_mark_inside_the_file_is_not_accepted(clinic: Clinic) -> None:
    clinic.ready()
    report = clinic.app.import_lines(b"\n\xef\xbb\xbf" + line(give())).as_dict()
    assert [(r["line"], r["code"]) for r in report["rejected"]] == [(2, "INVALID")]


def test_a_python_caller_passing_a_huge_integer_gets_invalid(clinic: Clinic) -> None:
    clinic.ready()
    before = clinic.notifications()
    with rejected(Code.INVALID, "dose_ml"):
        clinic.give(dose_ml=10**400)
    with rejected(Code.INVALID, "planned_sessions"):
        clinic.open("C2", planned_sessions=10**30)
    assert len(refusals_added(before, clinic.notifications())) == 2


def test_a_session_planned_at_the_end_of_the_calendar_is_invalid_not_a_crash(
        clinic: Clinic) -> None:
    clinic.ready()
    clinic.give(at=day(1))
    data = line(command("schedule_session", at=day(2), course_id="C1",
                        planned_at="9999-12-31T23:00:00Z"))
    report = clinic.app.import_lines(data).as_dict()
    assert [r["code"] for r in report["rejected"]] == ["INVALID"]


def test_stop_on_error_stops_at_the_first_rejected_line(clinic: Clinic) -> None:
    clinic.ready()
    data = b"\n".join([b"nope", line(give())])
    report = clinic.app.import_lines(data, stop_on_error=True).as_dict()
    assert report["applied"] == 0
    assert len(report["rejected"]) == 1
    assert clinic.course()["sessions_given"] == 0


def test_a_rule_broken_deep_in_a_file_changes_nothing_of_its_own(clinic: Clinic) -> None:
    clinic.ready()
    before = clinic.notifications()
    report = clinic.app.import_lines(line(give(actor="aes-cy"))).as_dict()
    assert [r["code"] for r in report["rejected"]] == ["NOT_AUTHORIZED"]
    assert len(refusals_added(before, clinic.notifications())) == 1
