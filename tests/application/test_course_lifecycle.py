"""Erasure, maintenance and pause/resume through the application, on every store kind."""

from __future__ import annotations

import datetime as dt

import pytest

from coursebook.clock import FixedClock
from coursebook.domain.values import ERASED
from coursebook.errors import Code
from tests.builders import PATIENT, Clinic, day, rejected


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def erase(clinic: Clinic, patient_ref: str = "P1", at: str | None = None) -> None:
    clinic.run("erase_patient", at=at or day(5), actor="dpo", patient_ref=patient_ref,
               reason="GDPR article 17 request")


class TestErasure:
    def test_every_change_to_any_course_of_the_patient_is_patient_erased(
            self, clinic: Clinic) -> None:
        clinic.ready("C1")
        clinic.ready("C2", indication="pigmentation")
        clinic.ready("C3", patient_ref="P-other")
        clinic.give("C1", at=day(1))
        erase(clinic)
        for course_id in ("C1", "C2"):
            with rejected(Code.PATIENT_ERASED):
                clinic.give(course_id, at=day(20))
            with rejected(Code.PATIENT_ERASED):
                clinic.run("discontinue_course", at=day(20), course_id=course_id,
                           reason="moved away")
            with rejected(Code.PATIENT_ERASED):
                clinic.consult(course_id, at=day(20))
        with rejected(Code.PATIENT_ERASED):
            clinic.react("C1", at=day(6))
        clinic.give("C3", at=day(20))

    def test_personal_data_reads_erased_while_the_facts_stay(self, clinic: Clinic) -> None:
        clinic.ready()
        assert clinic.course()["patient"] == PATIENT
        clinic.give(at=day(1))
        before = clinic.course()
        erase(clinic)
        after = clinic.course()
        assert after["patient"] == ERASED
        assert after["blocked_by"] == ["PATIENT_ERASED"]
        unchanged = {k: v for k, v in before.items() if k not in ("patient", "blocked_by")}
        assert {k: after[k] for k in unchanged} == unchanged

    def test_a_view_of_the_past_also_reads_erased(
            self, clinic: Clinic, clock: FixedClock) -> None:
        clinic.ready()
        moment = clock.now()
        clock.advance(dt.timedelta(hours=1))
        erase(clinic)
        past = clinic.course(known_at=moment)
        assert past["patient"] == ERASED
        assert past["blocked_by"] == []
        assert clinic.course(version=1)["patient"] == ERASED
        assert clinic.course(as_of=ts(day(1)))["patient"] == ERASED

    def test_blocked_by_counts_the_erasure_from_its_own_at(self, clinic: Clinic) -> None:
        clinic.ready()
        erase(clinic, at=day(5))
        assert clinic.course(as_of=ts(day(4)))["blocked_by"] == []
        assert clinic.course(as_of=ts(day(6)))["blocked_by"] == ["PATIENT_ERASED"]

    def test_the_erasure_is_recorded_but_adds_no_course_version(
            self, clinic: Clinic) -> None:
        clinic.ready()
        count = len(clinic.notifications())
        erase(clinic)
        assert clinic.course()["version"] == 2
        assert len(clinic.app.get_history("C1")) == 2
        assert len(clinic.notifications()) > count

    def test_a_new_course_cannot_be_opened_for_an_erased_patient(
            self, clinic: Clinic) -> None:
        clinic.ready()
        erase(clinic)
        with rejected(Code.PATIENT_ERASED):
            clinic.open("C9")


@pytest.fixture
def later(clock: FixedClock) -> FixedClock:
    """Maintenance lies months ahead: the clock moves to 2027-09-01."""
    clock.set(dt.datetime(2027, 9, 1, 12, tzinfo=dt.UTC))
    return clock


def four_sessions(clinic: Clinic) -> None:
    for d in (1, 15, 29, 43):  # last one 2026-10-14
        clinic.give(at=day(d))


@pytest.mark.usefixtures("later")
class TestMaintenance:
    def test_maintenance_sessions_are_numbered_on_and_spaced_by_the_maintenance_rule(
            self, clinic: Clinic) -> None:
        clinic.ready()
        four_sessions(clinic)
        clinic.complete(at=day(44))
        course = clinic.course()
        assert course["status"] == "maintenance"
        assert course["next"] == {"session_no": 5, "earliest": "2027-01-12",
                                  "target": "2027-02-11", "latest": "2027-04-12",
                                  "planned_at": None, "screening_valid_until": None}
        with rejected(Code.TOO_SOON):
            clinic.give(at="2027-01-11T10:00:00+01:00")
        clinic.give(at="2027-01-12T10:00:00+01:00", session_no=5)
        course = clinic.course()
        assert course["sessions_given"] == 5
        assert course["planned_sessions"] == 4
        assert course["blocked_by"] == []
        assert course["next"]["session_no"] == 6

    def test_maintenance_sessions_are_not_counted_against_the_plan(
            self, clinic: Clinic) -> None:
        clinic.ready()
        four_sessions(clinic)
        clinic.complete(at=day(44))
        for when in ("2027-01-12T10:00:00+01:00", "2027-04-12T10:00:00+02:00",
                     "2027-07-11T10:00:00+02:00"):
            clinic.give(at=when)
        assert clinic.course()["sessions_given"] == 7

    def test_an_adjustment_before_completion_does_not_govern_maintenance(
            self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.run("adjust_interval", at=day(2), course_id="C1", min_days=10,
                   target_days=12, max_days=15, reason="fast healer, shorter gaps")
        clinic.give(at=day(11))
        clinic.complete(at=day(12))
        assert clinic.course()["spacing"] == {"min_days": 90, "target_days": 120,
                                              "max_days": 180}

    def test_an_adjustment_during_maintenance_governs_it(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.complete(at=day(2))
        clinic.run("adjust_interval", at=day(3), course_id="C1", min_days=60,
                   target_days=75, max_days=90, reason="earlier touch-ups agreed")
        assert clinic.course()["spacing"] == {"min_days": 60, "target_days": 75,
                                              "max_days": 90}
        clinic.give(at=day(61))
        assert clinic.course()["sessions_given"] == 2

    def test_a_protocol_without_maintenance_completes(self, clinic: Clinic) -> None:
        clinic.ready(indication="fat_reduction")
        clinic.give(at=day(1))
        clinic.complete(at=day(2))
        course = clinic.course()
        assert course["status"] == "completed"
        assert course["next"] is None
        assert course["blocked_by"] == ["COURSE_CLOSED"]

    def test_a_maintenance_course_can_be_discontinued(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.complete(at=day(2))
        clinic.run("discontinue_course", at=day(3), course_id="C1", reason="moved away")
        assert clinic.course()["status"] == "discontinued"


@pytest.mark.usefixtures("later")
class TestResume:
    def test_resume_restores_maintenance(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.complete(at=day(2))
        clinic.pause(at=day(3))
        assert clinic.course()["status"] == "paused"
        with rejected(Code.COURSE_PAUSED):
            clinic.give(at=day(100))
        clinic.resume(at=day(4))
        assert clinic.course()["status"] == "maintenance"
        clinic.give(at=day(100))

    def test_resume_restores_active(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.pause(at=day(0, 10))
        clinic.resume(at=day(0, 11))
        assert clinic.course()["status"] == "active"
        assert clinic.course()["blocked_by"] == []
