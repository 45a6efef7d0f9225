"""The compliance findings (CONTRACT section 5) judged from folded course states, with time
and zone given as data: no store, no clock."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coursebook.domain import rules
from coursebook.domain.course_state import CourseState, GivenSession, Override, Reaction
from coursebook.domain.protocols import default_catalogue
from coursebook.domain.values import Personal, Product, SpacingRule
from coursebook.projections.compliance import SEVERITY, Finding, judge

PARIS = ZoneInfo("Europe/Paris")
UTC = ZoneInfo("UTC")
SKIN = default_catalogue().get("skin_rejuvenation")
PHASE_1 = SKIN.rule_for(2) if SKIN else None  # 14 / 21 / 28 days
OPENED = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
PRODUCT = Product("NCTF 135 HA", "LOT-1", dt.date(2027, 1, 31))


def at(month: int, day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=dt.UTC)


def course(course_id: str = "C-1", *, status: str = "active", patient_ref: str = "P-1",
           consulted: dt.datetime | None = OPENED, **fields: Any) -> CourseState:
    assert SKIN is not None
    return CourseState(course_id=course_id, patient_ref=patient_ref,
                        indication="skin_rejuvenation", protocol=SKIN, planned_sessions=4,
                        opened_at=OPENED, status=status, consultation_at=consulted,
                        consent=True, **fields)


def session(n: int, when: dt.datetime, *, gap: int | None = None,
            rule: SpacingRule | None = PHASE_1, reason: str | None = None,
            cautions: tuple[str, ...] = (), overrides: tuple[Override, ...] = (),
            maintenance: bool = False) -> GivenSession:
    return GivenSession(session_no=n, at=when, actor="nurse-lind", products=(PRODUCT,),
                        maintenance=maintenance, rule=rule if n > 1 else None,
                        gap_days=gap if n > 1 else None, spacing_override_reason=reason,
                        cautions=cautions, overrides=overrides)


def codes(findings: list[Finding]) -> list[tuple[str, str | None, int | None]]:
    return [(f.code, f.course_id, f.session_no) for f in findings]


def one(findings: list[Finding], code: str) -> Finding:
    matching = [f for f in findings if f.code == code]
    assert len(matching) == 1, codes(findings)
    return matching[0]


AS_OF = at(3, 20, 12)


class TestSpacingOverridden:
    def test_a_session_given_sooner_than_min_days_is_a_warning_with_its_stated_reason(self):
        state = course(sessions=[session(1, at(3, 2)),
                                 session(2, at(3, 12), gap=10, reason="Patient travels abroad")])
        finding = one(judge([state], [], as_of=AS_OF, zone=UTC), "SPACING_OVERRIDDEN")
        assert (finding.course_id, finding.session_no, finding.at) == ("C-1", 2, at(3, 12))
        assert finding.severity == "warning"
        assert finding.detail["reason"] == "Patient travels abroad"
        assert finding.detail["gap_days"] == 10
        assert finding.detail["min_days"] == 14
        assert finding.detail["rule"] == "default/skin_rejuvenation v1 phase 1"
        assert finding.detail["given_by"] == "nurse-lind"
        assert finding.detail["protocol"] == {"name": "default/skin_rejuvenation", "version": 1}

    def test_a_session_within_the_window_gives_no_spacing_finding(self):
        state = course(sessions=[session(1, at(3, 1)), session(2, at(3, 15), gap=14)])
        assert judge([state], [], as_of=AS_OF, zone=UTC) == []


class TestSpacingExceeded:
    def test_a_session_given_later_than_max_days_is_a_warning_with_the_gap(self):
        state = course(sessions=[session(1, at(1, 2)), session(2, at(2, 1), gap=30)])
        finding = one(judge([state], [], as_of=AS_OF, zone=UTC), "SPACING_EXCEEDED")
        assert (finding.session_no, finding.severity) == (2, "warning")
        assert finding.detail["gap_days"] == 30
        assert finding.detail["max_days"] == 28

    def test_a_gap_of_exactly_max_days_is_not_exceeded(self):
        state = course(sessions=[session(1, at(1, 2)), session(2, at(1, 30), gap=28)])
        assert judge([state], [], as_of=at(2, 1), zone=UTC) == []


class TestContraindicationOverridden:
    def test_a_session_under_an_override_names_codes_justification_and_who(self):
        override = Override("BREASTFEEDING", "Weaned last week, confirmed by GP letter",
                            "dr-okafor", at(3, 1, 10))
        state = course(sessions=[session(1, at(3, 2), overrides=(override,))])
        finding = one(judge([state], [], as_of=AS_OF, zone=UTC),
                      "CONTRAINDICATION_OVERRIDDEN")
        assert (finding.session_no, finding.at, finding.severity) == (1, at(3, 2), "warning")
        assert finding.detail["codes"] == ["BREASTFEEDING"]
        assert finding.detail["justifications"] == ["Weaned last week, confirmed by GP letter"]
        assert finding.detail["overridden_by"] == ["dr-okafor"]
        assert finding.detail["overridden_at"] == ["2026-03-01T10:00:00Z"]


class TestGivenWithCautions:
    def test_a_session_given_with_relative_codes_in_force_is_info_with_the_codes(self):
        state = course(sessions=[session(1, at(3, 2), cautions=("ANTICOAGULANTS", "DIABETES"))])
        finding = one(judge([state], [], as_of=AS_OF, zone=UTC), "GIVEN_WITH_CAUTIONS")
        assert finding.severity == "info"
        assert finding.detail["codes"] == ["ANTICOAGULANTS", "DIABETES"]


class TestOverdue:
    # Session 1 on 03-02 (Paris): session 2 is due 03-16 .. 03-30.
    @staticmethod
    def state(**fields: Any) -> CourseState:
        return course(sessions=[session(1, at(3, 2))], **fields)

    def test_an_active_course_past_its_latest_date_is_overdue_from_the_next_local_midnight(
            self):
        findings = judge([self.state()], [], as_of=at(3, 31, 12), zone=PARIS)
        finding = one(findings, "OVERDUE")
        assert (finding.course_id, finding.session_no) == ("C-1", 2)
        assert finding.at == dt.datetime(2026, 3, 31, 0, 0, tzinfo=PARIS)  # 22:00 UTC 03-30
        assert finding.detail["latest"] == "2026-03-30"
        assert finding.detail["days_overdue"] == 1

    def test_the_latest_day_itself_is_not_overdue_in_the_clinic_zone(self):
        # 21:30 UTC on 03-30 is still 03-30 23:30 in Paris.
        assert judge([self.state()], [], as_of=at(3, 30, 21, 30), zone=PARIS) == []
        # ... and 22:30 UTC is already 03-31 in Paris.
        assert codes(judge([self.state()], [], as_of=at(3, 30, 22, 30), zone=PARIS)) == [
            ("OVERDUE", "C-1", 2)]

    def test_a_paused_course_is_not_overdue(self):
        state = self.state(status="paused", status_before_pause="active")
        assert judge([state], [], as_of=at(4, 30), zone=PARIS) == []

    @pytest.mark.parametrize("status", ["completed", "discontinued", "open"])
    def test_a_closed_or_unconsulted_course_is_not_overdue(self, status: str):
        assert judge([self.state(status=status)], [], as_of=at(4, 30), zone=PARIS) == []

    def test_a_course_whose_patient_was_erased_is_never_overdue(self):
        state = self.state(patient_ref="P-GONE")
        assert judge([state], [], as_of=at(4, 30), zone=PARIS, erased={"P-GONE"}) == []

    def test_a_course_waiting_for_its_first_session_is_not_overdue(self):
        assert judge([course()], [], as_of=at(12, 30), zone=PARIS) == []

    def test_a_maintenance_course_is_overdue_by_the_maintenance_rule(self):
        state = course(status="maintenance", in_maintenance=True,
                       sessions=[session(1, at(1, 5)), session(2, at(1, 26), gap=21),
                                 session(3, at(2, 16), gap=21)])
        # Maintenance: 90..180 days after 02-16, latest 2026-08-15.
        assert judge([state], [], as_of=at(8, 15, 12), zone=UTC) == []
        finding = one(judge([state], [], as_of=at(8, 16, 12), zone=UTC), "OVERDUE")
        assert finding.session_no == 4
        assert finding.detail["rule"] == "default/skin_rejuvenation v1 maintenance"


class TestReactions:
    @staticmethod
    def state(*reactions: Reaction) -> CourseState:
        # Completed, so that no OVERDUE finding joins the reaction findings.
        return course(status="completed", sessions=[session(1, at(3, 2))],
                      reactions=list(reactions))

    def test_each_reaction_of_severity_three_or_more_is_a_severe_reaction_at_its_time(self):
        state = self.state(Reaction(1, "nodules", 3, at(3, 3), "desk-mara"),
                           Reaction(1, "redness", 2, at(3, 3, 12), "desk-mara"),
                           Reaction(1, "necrosis", 5, at(3, 4), "desk-mara"))
        findings = [f for f in judge([state], [], as_of=at(3, 4, 12), zone=UTC)
                    if f.code == "SEVERE_REACTION"]
        assert [(f.at, f.detail["severity"], f.detail["kind"]) for f in findings] == [
            (at(3, 3), 3, "nodules"), (at(3, 4), 5, "necrosis")]

    def test_an_unreviewed_severe_reaction_is_not_a_violation_before_48_hours(self):
        state = self.state(Reaction(1, "nodules", 3, at(3, 3), "desk-mara"))
        assert codes(judge([state], [], as_of=at(3, 5, 8, 59), zone=UTC)) == [
            ("SEVERE_REACTION", "C-1", 1)]

    def test_an_unreviewed_severe_reaction_is_a_violation_when_the_48_hours_run_out(self):
        state = self.state(Reaction(1, "nodules", 3, at(3, 3), "desk-mara"))
        finding = one(judge([state], [], as_of=at(3, 5, 9), zone=UTC), "REACTION_UNREVIEWED")
        assert (finding.severity, finding.session_no) == ("violation", 1)
        assert finding.at == at(3, 5, 9)
        assert finding.detail["deadline"] == "2026-03-05T09:00:00Z"

    def test_a_review_within_48_hours_means_no_violation(self):
        reaction = Reaction(1, "nodules", 3, at(3, 3), "desk-mara", reviewed_at=at(3, 5, 9),
                            reviewed_by="dr-okafor", decision="continue")
        assert codes(judge([self.state(reaction)], [], as_of=at(6, 1), zone=UTC)) == [
            ("SEVERE_REACTION", "C-1", 1)]

    def test_a_late_review_does_not_remove_the_violation(self):
        reaction = Reaction(1, "nodules", 3, at(3, 3), "desk-mara", reviewed_at=at(3, 6, 10),
                            reviewed_by="dr-okafor", decision="continue")
        finding = one(judge([self.state(reaction)], [], as_of=at(6, 1), zone=UTC),
                      "REACTION_UNREVIEWED")
        assert finding.at == at(3, 5, 9)
        assert finding.detail["reviewed_at"] == "2026-03-06T10:00:00Z"

    def test_a_mild_reaction_is_never_a_finding(self):
        state = self.state(Reaction(1, "redness", 2, at(3, 3), "desk-mara"))
        assert judge([state], [], as_of=at(6, 1), zone=UTC) == []


class TestLicenseExpiring:
    @staticmethod
    def nurse(expires: dt.date, practitioner_id: str = "nurse-lind") -> rules.Practitioner:
        return rules.Practitioner(practitioner_id, "nurse", expires)

    @pytest.mark.parametrize(("expires", "listed"), [
        (dt.date(2026, 1, 9), False),   # expired yesterday
        (dt.date(2026, 1, 10), True),   # 0 days: the as-of date itself
        (dt.date(2026, 2, 9), True),    # 30 days
        (dt.date(2026, 2, 10), False),  # 31 days
    ])
    def test_licences_ending_0_to_30_days_after_the_as_of_local_date_are_listed(
            self, expires: dt.date, listed: bool):
        as_of = at(1, 10, 12)
        findings = judge([], [self.nurse(expires)], as_of=as_of, zone=UTC)
        assert codes(findings) == ([("LICENSE_EXPIRING", None, None)] if listed else [])

    def test_a_licence_finding_is_at_the_as_of_moment_and_names_the_practitioner(self):
        as_of = at(1, 10, 12)
        finding = one(judge([], [self.nurse(dt.date(2026, 1, 31))], as_of=as_of, zone=UTC),
                      "LICENSE_EXPIRING")
        assert (finding.at, finding.severity) == (as_of, "info")
        assert finding.detail == {"practitioner_id": "nurse-lind", "role": "nurse",
                                  "license_expires_on": "2026-01-31", "days_left": 21}

    def test_the_horizon_counts_from_the_as_of_date_in_the_clinic_zone(self):
        # 23:30 UTC on 01-09 is already 01-10 in Paris: 31 days before 02-10.
        late_evening = dt.datetime(2026, 1, 9, 23, 30, tzinfo=dt.UTC)
        nurse = self.nurse(dt.date(2026, 2, 9))
        assert judge([], [nurse], as_of=late_evening, zone=UTC) == []  # 31 days in UTC
        assert one(judge([], [nurse], as_of=late_evening, zone=PARIS),
                   "LICENSE_EXPIRING").detail["days_left"] == 30


class TestReport:
    def test_findings_are_ordered_by_at_then_course_id(self):
        b = course("C-B", sessions=[session(1, at(3, 2), cautions=("DIABETES",))])
        a = course("C-A", sessions=[session(1, at(3, 2), cautions=("DIABETES",))])
        early = course("C-Z", sessions=[session(1, at(3, 1), cautions=("DIABETES",))])
        findings = judge([b, a, early], [], as_of=AS_OF, zone=UTC)
        assert [f.course_id for f in findings] == ["C-Z", "C-A", "C-B"]

    def test_every_finding_has_the_severity_the_contract_gives_its_code(self):
        assert SEVERITY == {
            "SPACING_OVERRIDDEN": "warning", "SPACING_EXCEEDED": "warning",
            "OVERDUE": "warning", "CONTRAINDICATION_OVERRIDDEN": "warning",
            "GIVEN_WITH_CAUTIONS": "info", "SEVERE_REACTION": "warning",
            "REACTION_UNREVIEWED": "violation", "LICENSE_EXPIRING": "info",
            "INTERVAL_BELOW_PROTOCOL": "warning", "SCREENING_INCONSISTENT": "warning",
            "FOLLOW_UP_MISSED": "warning", "AFTERCARE_NOT_RECORDED": "info"}

    def test_findings_never_carry_the_patients_personal_data(self):
        state = course(
            patient=Personal("P-1", {"name": "Jeanne Martin", "birth_date": "1984-03-12"}),
            screening=Personal("P-1", {"allergies": ["lidocaine"], "notes": "sister's wedding"}),
            sessions=[session(1, at(3, 2), cautions=("DIABETES",)),
                      session(2, at(3, 10), gap=8, reason="Travelling for a month")],
            reactions=[Reaction(2, "nodules", 4, at(3, 11), "desk-mara")])
        text = json.dumps([f.as_dict() for f in judge([state], [], as_of=at(9, 1), zone=UTC)])
        for personal in ("Jeanne", "Martin", "1984-03-12", "lidocaine", "wedding"):
            assert personal not in text

    def test_a_naive_as_of_is_refused(self):
        with pytest.raises(ValueError, match="timezone-aware"):
            judge([], [], as_of=dt.datetime(2026, 1, 1), zone=UTC)


def test_the_report_reads_every_course_event_the_fold_knows_and_the_erasures():
    from coursebook.projections.compliance import report_topics

    topics = {topic.split(":")[1] for topic in report_topics()}
    folded = {f"TreatmentCourse.{name[4:]}" for name in dir(CourseState)
              if name.startswith("_on_")}
    assert folded | {"TreatmentCourse.Opened", "PatientRecord.Erased",
                     "PractitionerRecord.Registered", "PractitionerRecord.LicenseRenewed"} \
        == topics
