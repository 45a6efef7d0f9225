"""OUT_OF_ORDER: a maintenance session whose `at` is before the `at` of the
`complete_course` that began maintenance (the issue's C-000054: a session refused
PLAN_EXCEEDED before the completion was later recorded as maintenance session 5, dated
before the completion)."""

from __future__ import annotations

from coursebook.errors import Code
from tests.builders import Clinic, day, rejected


def completed_into_maintenance(clinic: Clinic) -> None:
    clinic.ready()
    clinic.give(at=day(1))
    clinic.complete(at=day(2, 12))
    assert clinic.course()["status"] == "maintenance"


def test_a_maintenance_session_before_the_completion_is_out_of_order(
        clinic: Clinic) -> None:
    completed_into_maintenance(clinic)
    with rejected(Code.OUT_OF_ORDER, "at"):
        clinic.give(at=day(2, 10), spacing_override_reason="patient asked for it")
    assert clinic.course()["sessions_given"] == 1


def test_out_of_order_comes_before_too_soon(clinic: Clinic) -> None:
    completed_into_maintenance(clinic)
    with rejected(Code.OUT_OF_ORDER):
        clinic.give(at=day(2, 10))  # also far sooner than the maintenance rule's min_days


def test_a_maintenance_session_at_or_after_the_completion_is_not_out_of_order(
        clinic: Clinic) -> None:
    completed_into_maintenance(clinic)
    with rejected(Code.TOO_SOON):
        clinic.give(at=day(2, 12))
    outcome = clinic.give(at=day(2, 13), spacing_override_reason="patient asked for it")
    assert outcome.status == "applied"
    assert clinic.course()["sessions_given"] == 2


def test_a_course_completed_without_maintenance_stays_course_closed(
        clinic: Clinic) -> None:
    clinic.ready(indication="fat_reduction")
    clinic.give(at=day(1))
    clinic.complete(at=day(2, 12))
    with rejected(Code.COURSE_CLOSED):
        clinic.give(at=day(2, 10))
