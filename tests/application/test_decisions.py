"""The choices recorded in docs/decisions.md where the contract is silent, one test each."""

from __future__ import annotations

import pytest

from coursebook.domain import rules
from coursebook.domain.course_state import CourseState
from coursebook.errors import Code
from tests.builders import PATIENT, Clinic, day, rejected


def erase(clinic: Clinic, at: str | None = None) -> None:
    clinic.run("erase_patient", at=at or day(5), actor="dpo", patient_ref="P1",
               reason="GDPR request")


class TestOrderOfCourseChecks:
    def test_a_session_no_other_than_the_next_comes_before_course_closed(
            self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.run("discontinue_course", at=day(0, 10), course_id="C1", reason="moved")
        with rejected(Code.INVALID, "session_no"):
            clinic.give(session_no=4)

    def test_conflict_comes_before_a_session_no_other_than_the_next(
            self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.CONFLICT):
            clinic.give(session_no=4, expected_version=9)


class TestExpectedVersionOutsideCourses:
    def test_register_practitioner_compares_with_the_practitioner_record(
            self, clinic: Clinic) -> None:
        clinic.run("register_practitioner", at=day(0), actor="admin", practitioner_id="p9",
                   name="P Nine", role="nurse", license_number="L9",
                   license_expires_on="2030-01-01", expected_version=0)
        with rejected(Code.CONFLICT):
            clinic.run("renew_license", at=day(1), actor="admin", practitioner_id="p9",
                       license_number="L9b", license_expires_on="2031-01-01",
                       expected_version=0)
        clinic.run("renew_license", at=day(1), actor="admin", practitioner_id="p9",
                   license_number="L9b", license_expires_on="2031-01-01",
                   expected_version=1)

    def test_erase_patient_compares_with_the_patient_record(self, clinic: Clinic) -> None:
        clinic.open("C1")
        clinic.open("C2")  # the patient record: registered, then a course added
        with rejected(Code.CONFLICT):
            clinic.run("erase_patient", at=day(5), actor="dpo", patient_ref="P1",
                       reason="GDPR request", expected_version=1)
        clinic.run("erase_patient", at=day(5), actor="dpo", patient_ref="P1",
                   reason="GDPR request", expected_version=2)


class TestScheduling:
    def test_scheduling_a_session_already_scheduled_is_invalid(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.schedule(planned_at=day(1))
        with rejected(Code.INVALID, "session_no"):
            clinic.schedule(planned_at=day(2))

    def test_every_role_needs_a_valid_licence(self, clinic: Clinic) -> None:
        clinic.register("aes-old", "aesthetician", expires_on="2026-08-31")
        clinic.ready()
        with rejected(Code.NOT_AUTHORIZED, "actor"):
            clinic.schedule(planned_at=day(1), actor="aes-old")


class TestReviews:
    def test_one_review_covers_every_severe_reaction_of_the_session(
            self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.react(at=day(2), severity=3, kind="swelling")
        clinic.react(at=day(2, 12), severity=4, kind="nodules")
        clinic.review(at=day(3))
        assert clinic.course()["blocked_by"] == []
        with rejected(Code.NOT_FOUND):
            clinic.review(at=day(4))


class TestOverrides:
    def test_overriding_a_code_twice_under_one_consultation_is_invalid(
            self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(pregnant=True)
        override = {"course_id": "C1", "code": "PREGNANCY",
                    "justification": "confirmed not pregnant by a blood test"}
        clinic.run("override_contraindication", at=day(0, 10), **override)
        with rejected(Code.INVALID, "code"):
            clinic.run("override_contraindication", at=day(0, 11), **override)

    def test_an_override_may_be_made_again_under_a_new_consultation(
            self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(pregnant=True)
        justification = "confirmed not pregnant by a blood test"
        clinic.run("override_contraindication", at=day(0, 10), course_id="C1",
                   code="PREGNANCY", justification=justification)
        clinic.consult(at=day(0, 11), pregnant=True)
        clinic.run("override_contraindication", at=day(0, 12), course_id="C1",
                   code="PREGNANCY", justification=justification)
        clinic.give()


class TestPlanAndSpacing:
    def test_extending_to_fewer_sessions_than_planned_but_more_than_given_is_accepted(
            self, clinic: Clinic) -> None:
        clinic.ready(planned_sessions=8)
        clinic.give(at=day(1))
        clinic.run("extend_plan", at=day(2), course_id="C1", planned_sessions=3,
                   reason="plan revised")
        assert clinic.course()["planned_sessions"] == 3

    def test_the_latest_adjustment_governs(self, clinic: Clinic) -> None:
        clinic.ready()
        for low in (30, 10):
            clinic.run("adjust_interval", at=day(0, 10 + low // 10), course_id="C1",
                       min_days=low, target_days=low + 5, max_days=low + 10,
                       reason="pace agreed with the patient")
        assert clinic.course()["spacing"] == {"min_days": 10, "target_days": 15,
                                              "max_days": 20}

    def test_an_override_reason_with_a_long_enough_gap_is_recorded_without_a_finding(
            self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.give(at=day(22), spacing_override_reason="given just in case, no need")
        state = CourseState.fold(clinic.app.course_events("C1"))
        assert state is not None
        session = state.sessions[1]
        assert session.spacing_override_reason == "given just in case, no need"
        assert rules.judge_session(session) == []


class TestRecordedDecisions:
    def test_a_given_session_records_the_rule_gap_cautions_overrides_and_rules_version(
            self, clinic: Clinic) -> None:
        clinic.open(indication="hair_restoration")
        clinic.consult(pregnant=True, diabetes=True)
        clinic.run("override_contraindication", at=day(0, 10), course_id="C1",
                   code="PREGNANCY", justification="confirmed not pregnant by a blood test")
        for d in (1, 8, 15, 22):
            clinic.give(at=day(d))
        clinic.give(at=day(30), spacing_override_reason="patient flies home tomorrow")
        fifth = clinic.app.course_events("C1")[-1]
        assert type(fifth).__name__ == "SessionGiven"
        assert fifth.rule.source == "default/hair_restoration v1 phase 2"
        assert fifth.gap_days == 8
        assert fifth.spacing_override_reason == "patient flies home tomorrow"
        assert fifth.cautions == ["DIABETES"]
        assert [o["code"] for o in fifth.overrides] == ["PREGNANCY"]
        assert fifth.overrides[0]["by"] == "dr-ada"
        assert fifth.rules_version == rules.RULES_VERSION
        state = CourseState.fold(clinic.app.course_events("C1"))
        assert state is not None
        assert [code for code, _ in rules.judge_session(state.sessions[4])] == [
            "SPACING_OVERRIDDEN", "CONTRAINDICATION_OVERRIDDEN", "GIVEN_WITH_CAUTIONS"]

    def test_the_protocol_travels_with_the_course(self, clinic: Clinic) -> None:
        clinic.open(indication="pigmentation")
        opened = clinic.app.course_events("C1")[0]
        assert opened.protocol.label == "default/pigmentation v1"
        assert clinic.course()["protocol"] == {"name": "default/pigmentation", "version": 1}


class TestErasureViews:
    def test_version_n_shows_the_erasure_as_it_stands_now(self, clinic: Clinic) -> None:
        clinic.ready()
        erase(clinic)
        first = clinic.course(version=2)
        assert first["blocked_by"] == ["PATIENT_ERASED"]
        assert first["patient"] == "[erased]"

    def test_a_course_opened_without_patient_data_shows_null(self, clinic: Clinic) -> None:
        clinic.open(patient=None)
        assert clinic.course()["patient"] is None


@pytest.mark.parametrize("value", [PATIENT["name"], PATIENT["birth_date"]])
def test_receipts_keep_a_digest_not_the_body(clinic: Clinic, value: str) -> None:
    clinic.open()
    receipts = [n for n in clinic.notifications() if "CommandReceipt" in n.topic]
    assert receipts
    assert all(value.encode() not in n.state for n in receipts)
