"""Every rejection code of CONTRACT section 4, command by command, and the order of checks.

Times: the clinic is in Europe/Paris, the clock stands at 2026-11-01T12:00Z, the default
course C1 (skin rejuvenation: 4 sessions, 14/21/28 days) is opened and consulted on
`day(0)` = 2026-09-01, and its first session is given on `day(1)`.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from coursebook.errors import Code, Rejected
from tests.builders import DAY, T0, Clinic, command, day, product, rejected


def give_four(clinic: Clinic, course_id: str = "C1") -> None:
    for n, d in enumerate((1, 15, 29, 43), start=1):
        clinic.give(course_id, at=day(d), session_no=n)


class TestRegisterPractitioner:
    def test_registers_a_practitioner_who_may_then_act(self, clinic: Clinic) -> None:
        clinic.register("dr-new", "physician")
        clinic.open()
        clinic.consult(actor="dr-new")
        assert clinic.course()["status"] == "active"

    def test_an_id_in_use_is_already_exists(self, clinic: Clinic) -> None:
        with rejected(Code.ALREADY_EXISTS, "practitioner_id"):
            clinic.register("dr-ada", "nurse")


class TestRenewLicense:
    def test_an_unknown_practitioner_is_not_found(self, clinic: Clinic) -> None:
        with rejected(Code.NOT_FOUND, "practitioner_id"):
            clinic.run("renew_license", at=day(0), actor="admin", practitioner_id="ghost",
                       license_number="L", license_expires_on="2031-01-01")

    def test_a_renewed_licence_authorizes_acts_again(self, clinic: Clinic) -> None:
        clinic.register("dr-old", "physician", expires_on="2026-08-01")
        clinic.ready()
        with rejected(Code.NOT_AUTHORIZED, "actor"):
            clinic.give(actor="dr-old")
        clinic.run("renew_license", at=day(1, 8), actor="admin", practitioner_id="dr-old",
                   license_number="L-2", license_expires_on="2028-01-01")
        clinic.give(actor="dr-old")


class TestOpenCourse:
    def test_planned_sessions_default_to_the_protocol(self, clinic: Clinic) -> None:
        clinic.open(indication="hair_restoration")
        assert clinic.course()["planned_sessions"] == 8
        assert clinic.course()["status"] == "open"

    def test_an_id_in_use_is_already_exists(self, clinic: Clinic) -> None:
        clinic.open()
        with rejected(Code.ALREADY_EXISTS, "course_id"):
            clinic.open(patient_ref="P2")

    @pytest.mark.parametrize("planned", [2, 11])
    def test_planned_sessions_outside_the_protocol_range_are_invalid(
            self, clinic: Clinic, planned: int) -> None:
        with rejected(Code.INVALID, "planned_sessions"):
            clinic.open(planned_sessions=planned)

    def test_a_course_for_an_erased_patient_is_patient_erased(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.run("erase_patient", at=day(1), actor="admin", patient_ref="P1",
                   reason="GDPR request")
        with rejected(Code.PATIENT_ERASED):
            clinic.open("C2")


class TestRecordConsultation:
    def test_an_unknown_course_is_not_found(self, clinic: Clinic) -> None:
        with rejected(Code.NOT_FOUND, "course_id"):
            clinic.consult("nope")

    def test_activates_an_open_course(self, clinic: Clinic) -> None:
        clinic.ready()
        assert clinic.course()["status"] == "active"

    def test_a_fact_more_than_five_minutes_ahead_of_the_clock_is_future_fact(
            self, clinic: Clinic) -> None:
        clinic.open()
        with rejected(Code.FUTURE_FACT, "at"):
            clinic.consult(at="2026-11-01T12:05:01Z")

    def test_a_fact_up_to_five_minutes_ahead_is_accepted(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(at="2026-11-01T13:05:00+01:00")

    def test_an_aesthetician_may_not_consult(self, clinic: Clinic) -> None:
        clinic.open()
        with rejected(Code.NOT_AUTHORIZED, "actor"):
            clinic.consult(actor="aes-cy")

    def test_an_unregistered_actor_may_not_consult(self, clinic: Clinic) -> None:
        clinic.open()
        with rejected(Code.NOT_AUTHORIZED, "actor"):
            clinic.consult(actor="someone")

    def test_a_nurse_may_consult(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(actor="nurse-bo")

    def test_screening_answers_become_contraindication_codes(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(pregnant=True, bleeding_disorder=True, diabetes=True,
                       anticoagulants=True)
        assert clinic.course()["contraindications"] == {
            "absolute": ["BLEEDING_DISORDER", "PREGNANCY"],
            "relative": ["ANTICOAGULANTS", "DIABETES"], "overridden": []}

    def test_a_newer_consultation_replaces_the_codes_and_their_overrides(
            self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(breastfeeding=True)
        clinic.run("override_contraindication", at=day(0, 10), course_id="C1",
                   code="BREASTFEEDING", justification="weaned last week, confirmed")
        clinic.consult(at=day(0, 11), breastfeeding=True)
        assert clinic.course()["contraindications"]["overridden"] == []
        with rejected(Code.CONTRAINDICATED):
            clinic.give()


class TestOverrideContraindication:
    def test_a_code_not_in_force_is_invalid(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.INVALID, "code"):
            clinic.run("override_contraindication", at=day(0, 10), course_id="C1",
                       code="PREGNANCY", justification="a justification of length")

    def test_a_relative_code_cannot_be_overridden(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(diabetes=True)
        with rejected(Code.INVALID, "code"):
            clinic.run("override_contraindication", at=day(0, 10), course_id="C1",
                       code="DIABETES", justification="a justification of length")

    def test_a_nurse_may_not_override(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(pregnant=True)
        with rejected(Code.NOT_AUTHORIZED):
            clinic.run("override_contraindication", at=day(0, 10), actor="nurse-bo",
                       course_id="C1", code="PREGNANCY",
                       justification="a justification of length")

    def test_a_physician_override_lets_sessions_go_ahead(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(pregnant=True)
        clinic.run("override_contraindication", at=day(0, 10), course_id="C1",
                   code="PREGNANCY", justification="negative test on the day, physician")
        clinic.give()
        course = clinic.course()
        assert course["contraindications"]["overridden"] == ["PREGNANCY"]
        assert course["blocked_by"] == []


class TestScheduleSession:
    def test_schedules_the_next_session(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.schedule(planned_at=day(1), practitioner_id="nurse-bo", actor="aes-cy")
        assert clinic.course()["next"]["planned_at"] == "2026-09-02T07:00:00Z"

    def test_before_any_consultation_is_no_consultation(self, clinic: Clinic) -> None:
        clinic.open()
        with rejected(Code.NO_CONSULTATION):
            clinic.schedule(planned_at=day(1))

    def test_without_consent_is_no_consent(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(consent=False)
        with rejected(Code.NO_CONSENT):
            clinic.schedule(planned_at=day(1))

    def test_an_absolute_contraindication_is_contraindicated(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(active_infection_at_site=True)
        with rejected(Code.CONTRAINDICATED):
            clinic.schedule(planned_at=day(1))

    def test_a_paused_course_is_course_paused(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.pause(at=day(0, 9))
        with rejected(Code.COURSE_PAUSED):
            clinic.schedule(planned_at=day(1))

    def test_an_unregistered_actor_is_not_authorized(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.NOT_AUTHORIZED):
            clinic.schedule(planned_at=day(1), actor="receptionist")

    def test_a_session_beyond_the_plan_is_plan_exceeded(self, clinic: Clinic) -> None:
        clinic.ready()
        give_four(clinic)
        with rejected(Code.PLAN_EXCEEDED):
            clinic.schedule(at=day(58), planned_at=day(80))

    def test_too_soon_is_judged_by_the_local_date_of_planned_at(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))  # 2026-09-02
        # 2026-09-15T23:30+02:00 is 13 local days later; it is 09-15T21:30Z.
        with rejected(Code.TOO_SOON, "spacing_override_reason"):
            clinic.schedule(at=day(2), planned_at="2026-09-15T21:30:00Z")
        # 2026-09-16T00:30+02:00 is 14 local days later, although 13 by its UTC date.
        clinic.schedule(at=day(2), planned_at="2026-09-15T22:30:00Z")

    def test_too_soon_with_an_override_reason_is_accepted(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.schedule(at=day(2), planned_at=day(5),
                        spacing_override_reason="patient emigrates next week")

    def test_a_pending_reaction_review_does_not_stop_booking(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.react(severity=4)
        clinic.schedule(at=day(2), planned_at=day(22))
        assert clinic.course()["blocked_by"] == ["REACTION_UNREVIEWED"]

    def test_an_unknown_practitioner_is_not_found(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.NOT_FOUND, "practitioner_id"):
            clinic.schedule(planned_at=day(1), practitioner_id="ghost")

    def test_a_session_no_other_than_the_next_is_invalid(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.INVALID, "session_no"):
            clinic.schedule(planned_at=day(1), session_no=2)

    def test_a_closed_course_is_course_closed(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.run("discontinue_course", at=day(0, 10), course_id="C1", reason="moved away")
        with rejected(Code.COURSE_CLOSED):
            clinic.schedule(planned_at=day(1))


class TestRescheduleSession:
    def test_moves_the_planned_time(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.schedule(planned_at=day(1))
        clinic.run("reschedule_session", at=day(0, 11), course_id="C1", session_no=1,
                   planned_at=day(2), reason="patient asked")
        assert clinic.course()["next"]["planned_at"] == "2026-09-03T07:00:00Z"

    def test_a_session_not_scheduled_is_not_found(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.NOT_FOUND, "session_no"):
            clinic.run("reschedule_session", at=day(0, 11), course_id="C1", session_no=1,
                       planned_at=day(2), reason="patient asked")

    def test_too_soon_is_refused(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.schedule(at=day(2), planned_at=day(22))
        with rejected(Code.TOO_SOON):
            clinic.run("reschedule_session", at=day(3), course_id="C1", session_no=2,
                       planned_at=day(10), reason="patient asked")

    def test_a_paused_course_is_course_paused(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.schedule(planned_at=day(1))
        clinic.pause(at=day(0, 12))
        with rejected(Code.COURSE_PAUSED):
            clinic.run("reschedule_session", at=day(0, 13), course_id="C1", session_no=1,
                       planned_at=day(2), reason="patient asked")


class TestCancelSession:
    def test_clears_the_planned_time(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.schedule(planned_at=day(1))
        clinic.run("cancel_session", at=day(0, 11), actor="aes-cy", course_id="C1",
                   session_no=1, reason="ill")
        assert clinic.course()["next"]["planned_at"] is None

    def test_a_session_not_scheduled_is_not_found(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.NOT_FOUND, "session_no"):
            clinic.run("cancel_session", at=day(0, 11), course_id="C1", session_no=1,
                       reason="ill")


class TestGiveSession:
    def test_records_the_session_and_moves_the_window(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        course = clinic.course()
        assert course["sessions_given"] == 1
        assert course["last_session_at"] == "2026-09-02T07:00:00Z"
        assert course["next"] == {"session_no": 2, "earliest": "2026-09-16",
                                  "target": "2026-09-23", "latest": "2026-09-30",
                                  "planned_at": None, "screening_valid_until": None}

    def test_an_unknown_course_is_not_found(self, clinic: Clinic) -> None:
        with rejected(Code.NOT_FOUND, "course_id"):
            clinic.give("nope")

    def test_a_session_no_other_than_the_next_is_invalid(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.INVALID, "session_no"):
            clinic.give(session_no=2)

    def test_a_future_fact_is_refused(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.FUTURE_FACT):
            clinic.give(at="2026-11-02T09:00:00+01:00")

    def test_a_course_of_an_erased_patient_is_patient_erased(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.run("erase_patient", at=day(0, 12), actor="admin", patient_ref="P1",
                   reason="GDPR request")
        with rejected(Code.PATIENT_ERASED):
            clinic.give()

    def test_a_discontinued_course_is_course_closed(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.run("discontinue_course", at=day(0, 10), course_id="C1", reason="moved away")
        with rejected(Code.COURSE_CLOSED):
            clinic.give()

    def test_a_completed_course_without_maintenance_is_course_closed(
            self, clinic: Clinic) -> None:
        clinic.ready(indication="fat_reduction")
        clinic.give(at=day(1))
        clinic.complete(at=day(2))
        assert clinic.course()["status"] == "completed"
        with rejected(Code.COURSE_CLOSED):
            clinic.give(at=day(30))

    def test_a_paused_course_is_course_paused(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.pause(at=day(0, 10))
        with rejected(Code.COURSE_PAUSED):
            clinic.give()

    def test_an_aesthetician_may_not_inject(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.NOT_AUTHORIZED, "actor"):
            clinic.give(actor="aes-cy")

    def test_a_licence_expired_on_the_acts_local_date_is_not_authorized(
            self, clinic: Clinic) -> None:
        clinic.register("dr-exp", "physician", expires_on="2026-09-02")
        clinic.ready()
        # 2026-09-02T23:30+02:00 is still the expiry date in Paris: valid through it.
        clinic.give(at="2026-09-02T21:30:00Z", actor="dr-exp")
        # 2026-09-02T22:30Z is 2026-09-03 in Paris: the licence has expired.
        with rejected(Code.NOT_AUTHORIZED, "actor"):
            clinic.give(at="2026-09-02T22:30:00Z", actor="dr-exp",
                        spacing_override_reason="test of the licence only")

    def test_before_any_consultation_is_no_consultation(self, clinic: Clinic) -> None:
        clinic.open()
        with rejected(Code.NO_CONSULTATION):
            clinic.give()

    def test_without_consent_in_the_latest_consultation_is_no_consent(
            self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.consult(at=day(0, 10), consent=False)
        with rejected(Code.NO_CONSENT):
            clinic.give()

    def test_an_absolute_contraindication_in_force_is_contraindicated(
            self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(bleeding_disorder=True)
        with rejected(Code.CONTRAINDICATED):
            clinic.give()

    def test_a_relative_contraindication_is_only_a_caution(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(anticoagulants=True, heart_condition=True)
        clinic.give()
        assert clinic.course()["contraindications"]["relative"] == [
            "ANTICOAGULANTS", "HEART_CONDITION"]

    def test_a_product_matching_an_allergy_is_allergen(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(allergies=["Lidocaine"])
        with rejected(Code.ALLERGEN, "products[1].name") as info:
            clinic.give(products=[product(), product("LIDOCAINE HCl 2%")])
        assert "idocaine" not in info.value.message.lower()

    def test_an_anaesthetic_matching_an_allergy_is_allergen(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(allergies=["lidocaine"])
        with rejected(Code.ALLERGEN, "anaesthetic"):
            clinic.give(anaesthetic="Lidocaine 5% cream")

    def test_a_word_inside_another_word_is_not_an_allergen(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(allergies=["caine"])
        clinic.give(anaesthetic="Lidocaine 5% cream")

    def test_a_lot_expired_before_the_sessions_local_date_is_lot_expired(
            self, clinic: Clinic) -> None:
        clinic.ready()
        # 2026-09-02T22:30Z is 2026-09-03 in Paris: a lot good until 09-02 has expired.
        with rejected(Code.LOT_EXPIRED, "products[0].expires_on"):
            clinic.give(at="2026-09-02T22:30:00Z",
                        products=[product(expires_on="2026-09-02")])

    def test_a_lot_is_usable_on_its_expiry_date(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at="2026-09-02T21:30:00Z", products=[product(expires_on="2026-09-02")])

    def test_a_severe_reaction_awaiting_review_is_reaction_unreviewed(
            self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.react(severity=3)
        with rejected(Code.REACTION_UNREVIEWED):
            clinic.give(at=day(22))
        clinic.review()
        clinic.give(at=day(22))

    def test_a_session_beyond_the_plan_is_plan_exceeded(self, clinic: Clinic) -> None:
        clinic.ready()
        give_four(clinic)
        with rejected(Code.PLAN_EXCEEDED, "session_no"):
            clinic.give(at=day(57))

    def test_an_extended_plan_allows_more_sessions(self, clinic: Clinic) -> None:
        clinic.ready()
        give_four(clinic)
        clinic.run("extend_plan", at=day(58), course_id="C1", planned_sessions=5,
                   reason="good response")
        clinic.give(at=day(57))

    def test_a_session_before_the_previous_one_is_out_of_order(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(20))
        with rejected(Code.OUT_OF_ORDER, "at"):
            clinic.give(at=day(10), spacing_override_reason="back-dated entry from paper")

    def test_a_session_before_the_consultation_in_force_is_out_of_order(
            self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(at=day(2))
        with rejected(Code.OUT_OF_ORDER, "at"):
            clinic.give(at=day(1))

    def test_fewer_days_than_the_rule_minimum_is_too_soon(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        with rejected(Code.TOO_SOON, "spacing_override_reason"):
            clinic.give(at=day(14, 23))  # 13 calendar days later

    def test_exactly_the_minimum_is_accepted(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1, 23))
        clinic.give(at=day(15, 0))

    def test_too_soon_with_an_override_reason_is_accepted(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.give(at=day(3), spacing_override_reason="leaves the country for a year")
        assert clinic.course()["sessions_given"] == 2

    def test_a_stale_expected_version_is_conflict(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.CONFLICT, "expected_version"):
            clinic.give(expected_version=1)
        clinic.give(expected_version=2)


class TestScreeningStale:
    """Under `default@2` (screening_valid_days 180): the consultation of day 0 (09-01 in
    Paris) is valid through day 180 (2027-02-28); the clock stands at 2026-11-01, so the
    clinic's clock is moved on to give on those days."""

    def test_a_session_after_the_last_valid_day_is_screening_stale(
            self, clinic2: Clinic, clock: Any) -> None:
        clinic2.ready()
        clock.set(T0 + 200 * DAY)
        with rejected(Code.SCREENING_STALE):
            clinic2.give(at=day(181))
        clinic2.give(at=day(180))

    def test_no_consent_is_checked_before_screening_stale(
            self, clinic2: Clinic, clock: Any) -> None:
        clinic2.open()
        clinic2.consult(consent=False)
        clock.set(T0 + 200 * DAY)
        with rejected(Code.NO_CONSENT):
            clinic2.give(at=day(181))

    def test_default_1_has_no_such_rule(self, clinic: Clinic, clock: Any) -> None:
        clinic.ready()
        clock.set(T0 + 900 * DAY)
        clinic.give(at=day(835), products=[product(expires_on="2030-01-31")])
        assert clinic.course()["next"]["screening_valid_until"] is None


class TestReportReaction:
    def test_a_session_not_given_is_not_found(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.NOT_FOUND, "session_no"):
            clinic.react(session_no=1)

    def test_a_reaction_before_its_session_is_out_of_order(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        with rejected(Code.OUT_OF_ORDER, "at"):
            clinic.react(at=day(0, 23))

    def test_a_future_reaction_is_future_fact(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        with rejected(Code.FUTURE_FACT):
            clinic.react(at="2026-11-01T12:06:00Z")

    def test_an_aesthetician_may_report(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.react(actor="aes-cy", severity=1)

    def test_an_unregistered_actor_may_not_report(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        with rejected(Code.NOT_AUTHORIZED):
            clinic.react(actor="the-patient")

    def test_is_recorded_on_a_closed_course(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.run("discontinue_course", at=day(2), course_id="C1", reason="moved away")
        clinic.react(at=day(3), severity=3)
        assert clinic.course()["version"] == 5

    def test_is_refused_for_an_erased_patient(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.run("erase_patient", at=day(2), actor="admin", patient_ref="P1",
                   reason="GDPR request")
        with rejected(Code.PATIENT_ERASED):
            clinic.react(at=day(3))


class TestReviewReaction:
    def test_no_severe_reaction_awaiting_review_is_not_found(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.react(severity=2)
        with rejected(Code.NOT_FOUND, "session_no"):
            clinic.review()

    def test_a_reaction_reviewed_once_cannot_be_reviewed_again(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.react(severity=3)
        clinic.review()
        with rejected(Code.NOT_FOUND):
            clinic.review(at=day(4))

    def test_a_nurse_may_not_review(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.react(severity=3)
        with rejected(Code.NOT_AUTHORIZED):
            clinic.review(actor="nurse-bo")

    def test_a_review_before_the_reaction_is_out_of_order(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.react(at=day(3), severity=3)
        with rejected(Code.OUT_OF_ORDER):
            clinic.review(at=day(2))

    def test_a_future_review_is_future_fact(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.react(severity=3)
        with rejected(Code.FUTURE_FACT):
            clinic.review(at="2026-12-01T09:00:00Z")

    def test_deciding_to_discontinue_discontinues_the_course(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.react(severity=4)
        clinic.review(decision="discontinue")
        course = clinic.course()
        assert course["status"] == "discontinued"
        assert course["next"] is None
        assert course["blocked_by"] == ["COURSE_CLOSED"]

    def test_is_recorded_on_a_closed_course(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.run("discontinue_course", at=day(2), course_id="C1", reason="moved away")
        clinic.react(at=day(3), severity=3)
        clinic.review(at=day(4))
        assert clinic.course()["blocked_by"] == ["COURSE_CLOSED"]


class TestAdjustInterval:
    def test_governs_the_next_sessions(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.run("adjust_interval", at=day(2), actor="nurse-bo", course_id="C1",
                   min_days=30, target_days=35, max_days=40, reason="slow healing seen")
        assert clinic.course()["spacing"] == {"min_days": 30, "target_days": 35,
                                              "max_days": 40}
        with rejected(Code.TOO_SOON):
            clinic.give(at=day(22))
        clinic.give(at=day(31))

    def test_an_aesthetician_may_not_adjust(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.NOT_AUTHORIZED):
            clinic.run("adjust_interval", at=day(2), actor="aes-cy", course_id="C1",
                       min_days=30, target_days=35, max_days=40, reason="slow healing seen")


class TestExtendPlan:
    @pytest.mark.parametrize("planned", [4, 3, 21])
    def test_not_above_the_sessions_given_or_above_twenty_is_invalid(
            self, clinic: Clinic, planned: int) -> None:
        clinic.ready()
        give_four(clinic)
        with rejected(Code.INVALID, "planned_sessions"):
            clinic.run("extend_plan", at=day(58), course_id="C1",
                       planned_sessions=planned, reason="good response")

    def test_twenty_is_the_ceiling(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.run("extend_plan", at=day(2), course_id="C1", planned_sessions=20,
                   reason="good response")
        assert clinic.course()["planned_sessions"] == 20

    def test_a_nurse_may_not_extend(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.NOT_AUTHORIZED):
            clinic.run("extend_plan", at=day(2), actor="nurse-bo", course_id="C1",
                       planned_sessions=6, reason="good response")


class TestPauseAndResume:
    def test_pausing_a_paused_course_is_invalid(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.pause()
        with rejected(Code.INVALID):
            clinic.pause()

    def test_resuming_a_course_that_is_not_paused_is_invalid(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.INVALID):
            clinic.resume()

    def test_resuming_restores_an_active_course(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.pause()
        assert clinic.course()["status"] == "paused"
        assert clinic.course()["blocked_by"] == ["COURSE_PAUSED"]
        clinic.resume()
        assert clinic.course()["status"] == "active"

    def test_resuming_restores_an_open_course(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.pause()
        clinic.resume()
        assert clinic.course()["status"] == "open"

    def test_a_consultation_during_a_pause_resumes_to_active(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.pause(at=day(0, 8))
        clinic.consult(at=day(0, 9))
        assert clinic.course()["status"] == "paused"
        clinic.resume(at=day(0, 10))
        assert clinic.course()["status"] == "active"

    def test_pausing_a_discontinued_course_is_course_closed(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.run("discontinue_course", at=day(0, 10), course_id="C1", reason="moved away")
        with rejected(Code.COURSE_CLOSED):
            clinic.pause()


class TestCompleteCourse:
    def test_before_any_session_is_invalid(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.INVALID):
            clinic.complete()

    def test_outside_status_active_is_invalid(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.pause(at=day(2))
        with rejected(Code.INVALID):
            clinic.complete()

    def test_a_protocol_with_maintenance_moves_to_maintenance(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.complete(at=day(2))
        course = clinic.course()
        assert course["status"] == "maintenance"
        assert course["spacing"] == {"min_days": 90, "target_days": 120, "max_days": 180}


class TestDiscontinueCourse:
    def test_a_discontinued_course_cannot_be_discontinued_again(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.run("discontinue_course", at=day(0, 10), course_id="C1", reason="moved away")
        with rejected(Code.COURSE_CLOSED):
            clinic.run("discontinue_course", at=day(0, 11), course_id="C1",
                       reason="moved away")


class TestErasePatient:
    def test_an_unknown_patient_is_not_found(self, clinic: Clinic) -> None:
        with rejected(Code.NOT_FOUND, "patient_ref"):
            clinic.run("erase_patient", at=day(0), actor="admin", patient_ref="P404",
                       reason="GDPR request")

    def test_erasing_twice_is_patient_erased(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.run("erase_patient", at=day(1), actor="admin", patient_ref="P1",
                   reason="GDPR request")
        with rejected(Code.PATIENT_ERASED):
            clinic.run("erase_patient", at=day(2), actor="admin", patient_ref="P1",
                       reason="GDPR request")


class TestAnyCommand:
    def test_an_unknown_command_name_is_unknown_command(self, clinic: Clinic) -> None:
        with rejected(Code.UNKNOWN_COMMAND, "command"):
            clinic.app.execute(command("give_sessions", at=day(1)))

    def test_a_reused_id_with_another_body_is_conflicting_duplicate(
            self, clinic: Clinic) -> None:
        clinic.app.execute(command("open_course", at=day(0), command_id="same-id",
                                   course_id="C9", patient_ref="P9",
                                   indication="cellulite"))
        with rejected(Code.CONFLICTING_DUPLICATE, "command_id"):
            clinic.app.execute(command("open_course", at=day(0), command_id="same-id",
                                       course_id="C9", patient_ref="P9",
                                       indication="pigmentation"))


def test_every_rejection_code_has_a_test_here() -> None:
    source = inspect.getsource(inspect.getmodule(test_every_rejection_code_has_a_test_here))
    missing = [code.name for code in Code
               if f"rejected(Code.{code.name}" not in source.replace("\n", "")]
    assert missing == []


class TestOrderOfChecks:
    """Where a command breaks several rules, the first in the contract's table is reported."""

    def test_a_known_command_id_is_settled_before_any_other_rule(self, clinic: Clinic) -> None:
        clinic.ready()
        first = command("give_session", at=day(1), command_id="g-1", course_id="C1",
                        products=[product()], areas=["face"], dose_ml=2, anaesthetic=None)
        clinic.app.execute(first)
        clinic.run("discontinue_course", at=day(2), course_id="C1", reason="moved away")
        assert clinic.app.execute(dict(first)).status == "duplicate"
        with rejected(Code.CONFLICTING_DUPLICATE):
            clinic.app.execute({**first, "command": "no_such_command", "extra": 1})

    def test_a_malformed_command_id_is_invalid_even_for_an_unknown_command(
            self, clinic: Clinic) -> None:
        with rejected(Code.INVALID, "command_id"):
            clinic.app.execute({"command": "nope", "command_id": "bad id"})

    def test_conflict_before_not_found(self, clinic: Clinic) -> None:
        with rejected(Code.CONFLICT):
            clinic.give("nope", expected_version=3)

    def test_invalid_session_no_before_future_fact(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.INVALID):
            clinic.give(session_no=3, at="2027-01-01T00:00:00Z")

    def test_future_fact_before_patient_erased(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.run("erase_patient", at=day(0, 12), actor="admin", patient_ref="P1",
                   reason="GDPR request")
        with rejected(Code.FUTURE_FACT):
            clinic.give(at="2027-01-01T00:00:00Z")

    def test_patient_erased_before_course_closed(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.run("discontinue_course", at=day(0, 10), course_id="C1", reason="moved away")
        clinic.run("erase_patient", at=day(0, 12), actor="admin", patient_ref="P1",
                   reason="GDPR request")
        with rejected(Code.PATIENT_ERASED):
            clinic.give()

    def test_course_paused_before_not_authorized(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.pause(at=day(0, 10))
        with rejected(Code.COURSE_PAUSED):
            clinic.give(actor="aes-cy")

    def test_not_authorized_before_no_consultation(self, clinic: Clinic) -> None:
        clinic.open()
        with rejected(Code.NOT_AUTHORIZED):
            clinic.give(actor="aes-cy")

    def test_no_consent_before_contraindicated(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(consent=False, pregnant=True)
        with rejected(Code.NO_CONSENT):
            clinic.give()

    def test_contraindicated_before_allergen(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(pregnant=True, allergies=["lidocaine"])
        with rejected(Code.CONTRAINDICATED):
            clinic.give(anaesthetic="lidocaine")

    def test_allergen_before_lot_expired(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(allergies=["lidocaine"])
        with rejected(Code.ALLERGEN):
            clinic.give(anaesthetic="lidocaine", products=[product(expires_on="2020-01-01")])

    def test_lot_expired_before_reaction_unreviewed(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        clinic.react(severity=5)
        with rejected(Code.LOT_EXPIRED):
            clinic.give(at=day(22), products=[product(expires_on="2020-01-01")])

    def test_reaction_unreviewed_before_plan_exceeded(self, clinic: Clinic) -> None:
        clinic.ready()
        give_four(clinic)
        clinic.react(session_no=4, at=day(44), severity=3)
        with rejected(Code.REACTION_UNREVIEWED):
            clinic.give(at=day(57))

    def test_plan_exceeded_before_out_of_order(self, clinic: Clinic) -> None:
        clinic.ready()
        give_four(clinic)
        with rejected(Code.PLAN_EXCEEDED):
            clinic.give(at=day(2))

    def test_out_of_order_before_too_soon(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(20))
        with rejected(Code.OUT_OF_ORDER):
            clinic.give(at=day(10))

    def test_a_rejected_command_records_nothing(self, clinic: Clinic) -> None:
        clinic.ready()
        before = clinic.notifications()
        for attempt in (lambda: clinic.give(actor="aes-cy"),
                        lambda: clinic.give(products=[product(expires_on="2020-01-01")]),
                        lambda: clinic.give(session_no=5)):
            with pytest.raises(Rejected):
                attempt()
        assert clinic.notifications() == before
