"""One structured log event per command, and no personal data in logs or refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from coursebook.errors import Rejected
from tests.builders import Clinic, command, day, product, screening
from tests.logcapture import capture_logs

NAME, BIRTH = "Zephyrine Quillard-Oyelaran", "1971-07-23"
ALLERGY, MEDICATION = "Quetzalcaine", "Xylomedrone 40mg"
NOTES = ("screening-note-aurochs", "reaction-note-bittern", "review-note-caracal")
PERSONAL = (NAME, BIRTH, ALLERGY, MEDICATION, *NOTES)


def private_course(clinic: Clinic) -> list[Rejected]:
    """A course full of personal data, with accepted and refused commands."""
    refusals: list[Rejected] = []

    def refused(action: Callable[[], Any]) -> None:
        with pytest.raises(Rejected) as info:
            action()
        refusals.append(info.value)

    clinic.open(patient={"name": NAME, "birth_date": BIRTH})
    answers = screening(allergies=[ALLERGY], medications=[MEDICATION], notes=NOTES[0],
                        diabetes=True)
    clinic.run("record_consultation", at=day(0), course_id="C1", consent=True,
               screening=answers)
    refused(lambda: clinic.give(products=[product(f"{ALLERGY} HCl 2%")]))
    refused(lambda: clinic.give(anaesthetic=ALLERGY.lower()))
    refused(lambda: clinic.run("record_consultation", at=day(0), course_id="C1",
                               consent=True, screening={**answers, "smoker": NAME}))
    refused(lambda: clinic.run("record_consultation", at=day(0), course_id="C1",
                               consent="yes", screening=answers))
    refused(lambda: clinic.run("record_consultation", at=day(0), course_id="C1",
                               consent=True, screening={**answers, "notes": 7}))
    refused(lambda: clinic.open("C2", patient={"name": NAME, "birth_date": "1971-02-30"}))
    refused(lambda: clinic.open("C2", patient={"name": NAME, "birth_date": BIRTH,
                                               "pet": NOTES[0]}))
    clinic.give(at=day(1))
    clinic.react(at=day(2), severity=3, notes=NOTES[1])
    refused(lambda: clinic.react(at=day(2), session_no=9, notes=NOTES[1]))
    refused(lambda: clinic.review(at=day(3), actor="nurse-bo", notes=NOTES[2]))
    clinic.review(at=day(3), notes=NOTES[2])
    refused(lambda: clinic.app.execute(command("record_consultation", at=day(0),
                                               command_id="bad id " + NAME)))
    return refusals


def test_each_command_logs_one_event_with_its_outcome(clinic: Clinic) -> None:
    with capture_logs() as events:
        clinic.open()
        with pytest.raises(Rejected):
            clinic.give()
        clinic.consult()
        with pytest.raises(Rejected):
            clinic.app.execute({"command": "give_session", "command_id": "bad id"})
    assert [e["event"] for e in events] == ["command"] * 4
    opened, refused, consulted, malformed = events
    assert opened["command"] == "open_course"
    assert opened["outcome"] == "applied"
    assert opened["subject"] == "C1"
    assert opened["version"] == 1
    assert opened["command_id"].startswith("cmd-")
    assert refused["command"] == "give_session"
    assert refused["outcome"] == "rejected"
    assert refused["code"] == "NO_CONSULTATION"
    assert consulted["outcome"] == "applied"
    assert malformed["command_id"] is None
    assert malformed["code"] == "INVALID"
    assert malformed["field"] == "command_id"
    for event in events:
        assert isinstance(event["duration_ms"], float)
        assert event["duration_ms"] >= 0
        assert event["log_level"] == "info"


def test_a_duplicate_is_logged_as_a_duplicate(clinic: Clinic) -> None:
    body = command("open_course", at=day(0), command_id="open-1", course_id="C1",
                   patient_ref="P1", indication="cellulite")
    clinic.app.execute(body)
    with capture_logs() as events:
        clinic.app.execute(body)
    assert [(e["outcome"], e["command_id"]) for e in events] == [("duplicate", "open-1")]


def test_no_personal_value_appears_in_any_log_event_or_refusal(clinic: Clinic) -> None:
    with capture_logs() as events:
        refusals = private_course(clinic)
        clinic.run("erase_patient", at=day(5), actor="dpo", patient_ref="P1",
                   reason="GDPR request")
    assert len(refusals) == 10
    assert len(events) == 5 + len(refusals) + 1  # accepted, refused, erasure
    texts = [repr(event) for event in events]
    texts += [f"{r} {r.message} {r.field}" for r in refusals]
    for text in texts:
        for value in PERSONAL:
            assert value.casefold() not in text.casefold(), (value, text)


def test_no_personal_value_appears_in_the_history_summaries(clinic: Clinic) -> None:
    private_course(clinic)
    text = repr(clinic.app.get_history("C1"))
    for value in PERSONAL:
        assert value not in text
