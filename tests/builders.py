"""Valid commands in a few words, so tests read as sentences.

`command(...)` builds one JSON-form command dict; `Clinic` drives an application with
sensible defaults (a physician, a nurse, an aesthetician, one skin course in Paris time)
and hands out fresh command ids. Every default is valid: a test changes only the field
whose rule it proves.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.utils import get_topic

from coursebook.domain.store_records import CommandReceipt
from coursebook.errors import Code, Rejected
from coursebook.service.application import Coursebook, Outcome

__all__ = [
    "DAY", "PATIENT", "SCREENING_ALL_NO", "T0", "Clinic", "command", "day", "product",
    "refusals_added", "rejected", "screening",
]

PARIS = dt.timezone(dt.timedelta(hours=2))  # CEST: every default date below is in summer
T0 = dt.datetime(2026, 9, 1, 9, 0, tzinfo=PARIS)
"""The day the default course is opened and the patient consulted (clock is 2026-11-01)."""
DAY = dt.timedelta(days=1)

PATIENT = {"name": "Jeanne Martin", "birth_date": "1984-03-12"}
SCREENING_ALL_NO: dict[str, Any] = {
    "pregnant": False, "breastfeeding": False, "active_infection_at_site": False,
    "bleeding_disorder": False, "anticoagulants": False, "autoimmune_disease": False,
    "diabetes": False, "heart_condition": False, "allergies": [], "medications": [],
}

_ids = itertools.count(1)


def day(n: int, hour: int = 9) -> str:
    """The timestamp `n` days after T0 (at `hour` local time), as the JSON form."""
    return (T0 + n * DAY).replace(hour=hour).isoformat()


def screening(**answers: Any) -> dict[str, Any]:
    """A complete screening: every answer "no" unless given."""
    return {**SCREENING_ALL_NO, **answers}


def product(name: str = "NCTF 135 HA", lot: str = "LOT-1",
            expires_on: str = "2027-12-31") -> dict[str, str]:
    return {"name": name, "lot": lot, "expires_on": expires_on}


def command(name: str, /, *, at: str | dt.datetime, actor: str = "dr-ada",
            command_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """One command in its JSON form, with a fresh command_id unless given."""
    body: dict[str, Any] = {
        "command": name, "command_id": command_id or f"cmd-{next(_ids)}",
        "at": at.isoformat() if isinstance(at, dt.datetime) else at, "actor": actor,
    }
    body.update(fields)
    return body


REFUSAL_TOPICS = frozenset(get_topic(cls) for cls in (CommandReceipt.Refused,
                                                    CommandReceipt.AnotherBodyRefused))


def refusals_added(before: list[Any], after: list[Any]) -> list[UUID]:
    """The receipts (ids) of the refusals recorded between two readings of the store's
    records, checking that nothing else was recorded: a refused command leaves nothing
    but its remembered refusal."""
    assert after[:len(before)] == before
    added = after[len(before):]
    assert all(n.topic in REFUSAL_TOPICS for n in added), [n.topic for n in added]
    return [n.originator_id for n in added]


@contextmanager
def rejected(code: Code, field: str | None = None) -> Iterator[pytest.ExceptionInfo[Rejected]]:
    """Expects the block to be refused with `code` (and, when given, at `field`)."""
    with pytest.raises(Rejected) as info:
        yield info
    assert info.value.code == code, info.value
    if field is not None:
        assert info.value.field == field, info.value


class Clinic:
    """An application with staff registered, and short verbs for the usual commands."""

    def __init__(self, app: Coursebook, *, staff: bool = True) -> None:
        self.app = app
        if staff:
            self.register("dr-ada", "physician")
            self.register("nurse-bo", "nurse")
            self.register("aes-cy", "aesthetician")

    def run(self, name: str, /, *, at: str | dt.datetime, actor: str = "dr-ada",
            **fields: Any) -> Outcome:
        return self.app.execute(command(name, at=at, actor=actor, **fields))

    def register(self, practitioner_id: str, role: str = "physician",
                 expires_on: str = "2030-12-31", at: str = "2026-01-05T09:00:00+01:00",
                 ) -> Outcome:
        return self.run("register_practitioner", at=at, actor="admin",
                        practitioner_id=practitioner_id, name=f"Name of {practitioner_id}",
                        role=role, license_number=f"LIC-{practitioner_id}",
                        license_expires_on=expires_on)

    def open(self, course_id: str = "C1", *, indication: str = "skin_rejuvenation",
             patient_ref: str = "P1", at: str | None = None, **fields: Any) -> Outcome:
        fields.setdefault("patient", PATIENT)
        return self.run("open_course", at=at or day(0, 8), actor="admin",
                        course_id=course_id, patient_ref=patient_ref,
                        indication=indication, **fields)

    def consult(self, course_id: str = "C1", *, at: str | None = None,
                actor: str = "dr-ada", consent: bool = True, **answers: Any) -> Outcome:
        return self.run("record_consultation", at=at or day(0), actor=actor,
                        course_id=course_id, consent=consent, screening=screening(**answers))

    def ready(self, course_id: str = "C1", **open_fields: Any) -> None:
        """A course opened and consulted (consent, nothing to declare) on T0."""
        self.open(course_id, **open_fields)
        self.consult(course_id)

    def give(self, course_id: str = "C1", *, at: str | None = None, actor: str = "dr-ada",
             **fields: Any) -> Outcome:
        fields.setdefault("products", [product()])
        fields.setdefault("areas", ["face"])
        fields.setdefault("dose_ml", 2.0)
        fields.setdefault("anaesthetic", None)
        return self.run("give_session", at=at or day(1), actor=actor, course_id=course_id,
                        **fields)

    def schedule(self, course_id: str = "C1", *, at: str | None = None,
                 planned_at: str, actor: str = "dr-ada", **fields: Any) -> Outcome:
        return self.run("schedule_session", at=at or day(0, 10), actor=actor,
                        course_id=course_id, planned_at=planned_at, **fields)

    def react(self, course_id: str = "C1", *, session_no: int = 1, severity: int = 3,
              at: str | None = None, actor: str = "dr-ada", **fields: Any) -> Outcome:
        fields.setdefault("kind", "swelling")
        return self.run("report_reaction", at=at or day(2), actor=actor, course_id=course_id,
                        session_no=session_no, severity=severity, **fields)

    def review(self, course_id: str = "C1", *, session_no: int = 1,
               decision: str = "continue", at: str | None = None, actor: str = "dr-ada",
               **fields: Any) -> Outcome:
        return self.run("review_reaction", at=at or day(3), actor=actor, course_id=course_id,
                        session_no=session_no, decision=decision, **fields)

    def pause(self, course_id: str = "C1", *, at: str | None = None) -> Outcome:
        return self.run("pause_course", at=at or day(1, 8), course_id=course_id,
                        reason="patient travelling")

    def resume(self, course_id: str = "C1", *, at: str | None = None) -> Outcome:
        return self.run("resume_course", at=at or day(1, 8), course_id=course_id)

    def complete(self, course_id: str = "C1", *, at: str | None = None) -> Outcome:
        return self.run("complete_course", at=at or day(60), course_id=course_id)

    def course(self, course_id: str = "C1", **query: Any) -> dict[str, Any]:
        return self.app.get_course(course_id, **query)

    def notifications(self) -> list[Any]:
        """Every stored record, in recording order (the whole content of the store)."""
        recorder: Any = self.app.recorder
        return list(recorder.select_notifications(1, 1_000_000))
