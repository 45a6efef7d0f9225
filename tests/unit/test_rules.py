"""The pure rules of CONTRACT section 4: days, allergies, spacing, windows, blocks, roles."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from coursebook.domain import rules
from coursebook.domain.course_state import (
    CourseState,
    GivenSession,
    Override,
    Reaction,
    Scheduled,
)
from coursebook.domain.protocols import default_catalogue
from coursebook.domain.values import Product, SpacingRule
from coursebook.errors import Code, Rejected

PARIS = ZoneInfo("Europe/Paris")
UTC = ZoneInfo("UTC")
AUCKLAND = ZoneInfo("Pacific/Auckland")
CATALOGUE = default_catalogue()


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def state(indication: str = "skin_rejuvenation", *, planned: int = 4) -> CourseState:
    protocol = CATALOGUE.get(indication)
    assert protocol is not None
    return CourseState(course_id="C1", patient_ref="P1", indication=indication,
                       protocol=protocol, planned_sessions=planned,
                       opened_at=ts("2026-09-01T08:00:00+02:00"))


def given(n: int, at: str) -> GivenSession:
    return GivenSession(session_no=n, at=ts(at), actor="dr-ada", products=(),
                        maintenance=False, rule=None, gap_days=None,
                        spacing_override_reason=None, cautions=(), overrides=())


def consulted(s: CourseState, at: str = "2026-09-01T09:00:00+02:00", *,
              consent: bool = True, absolute: tuple[str, ...] = ()) -> CourseState:
    s.status, s.consultation_at, s.consent, s.absolute = "active", ts(at), consent, absolute
    return s


class TestDaysBetween:
    def test_counts_calendar_days_not_24_hour_periods(self) -> None:
        assert rules.days_between(ts("2026-09-01T23:59:00+02:00"),
                                  ts("2026-09-02T00:01:00+02:00"), PARIS) == 1

    def test_same_local_day_is_zero_days(self) -> None:
        assert rules.days_between(ts("2026-09-01T00:01:00+02:00"),
                                  ts("2026-09-01T23:59:00+02:00"), PARIS) == 0

    def test_autumn_dst_change_day_of_25_hours_counts_as_one_day(self) -> None:
        # Paris leaves summer time on 2026-10-25: that day lasts 25 hours.
        assert rules.days_between(ts("2026-10-24T23:30:00+02:00"),
                                  ts("2026-10-25T23:30:00+01:00"), PARIS) == 1

    def test_spring_dst_change_day_of_23_hours_counts_as_one_day(self) -> None:
        assert rules.days_between(ts("2026-03-28T00:30:00+01:00"),
                                  ts("2026-03-29T23:30:00+02:00"), PARIS) == 1

    def test_fourteen_days_across_dst_are_fourteen_days(self) -> None:
        assert rules.days_between(ts("2026-10-18T10:00:00+02:00"),
                                  ts("2026-11-01T10:00:00+01:00"), PARIS) == 14

    def test_the_clinic_zone_decides_the_date_not_the_offset_written(self) -> None:
        earlier = ts("2026-09-01T20:00:00+00:00")  # 22:00 in Paris, 2026-09-01
        later = ts("2026-09-01T23:00:00+00:00")    # 01:00 in Paris, 2026-09-02
        assert rules.days_between(earlier, later, UTC) == 0
        assert rules.days_between(earlier, later, PARIS) == 1

    def test_a_zone_ahead_of_utc_moves_the_date_forward(self) -> None:
        instant = ts("2026-09-01T13:00:00Z")  # 01:00 on 2026-09-02 in Auckland
        assert rules.local_date(instant, AUCKLAND) == dt.date(2026, 9, 2)
        assert rules.local_date(instant, UTC) == dt.date(2026, 9, 1)

    def test_later_before_earlier_is_negative(self) -> None:
        assert rules.days_between(ts("2026-09-05T10:00:00Z"), ts("2026-09-01T10:00:00Z"),
                                  UTC) == -4


def lot(name: str) -> Product:
    return Product(name=name, lot="L1", expires_on=dt.date(2027, 1, 1))


class TestAllergyMatching:
    @pytest.mark.parametrize(("allergy", "name"), [
        ("lidocaine", "Lidocaine HCl 2%"),
        ("LIDOCAINE", "lidocaine"),
        ("  Lidocaine  ", "lidocaine"),
        ("hyaluronic acid", "Cross-linked Hyaluronic Acid 20mg/ml"),
        ("lidocaine", "Xylo-lidocaine"),
        ("lidocaine", "lidocaine2%"),
        ("lidocaine", "(lidocaine)"),
        ("strasse", "STRAßE gel"),
        ("nctf 135 ha", "NCTF 135 HA"),
    ])
    def test_matches_a_whole_word_or_phrase_after_case_folding(
            self, allergy: str, name: str) -> None:
        assert rules.allergen_field([allergy], [lot(name)], None) == "products[0].name"

    @pytest.mark.parametrize(("allergy", "name"), [
        ("caine", "Lidocaine HCl 2%"),
        ("lido", "Lidocaine"),
        ("lidocaine", "lidocaines"),
        ("acid hyaluronic", "hyaluronic acid"),
        ("hyaluronic  acid", "hyaluronic acid"),
        ("", "anything"),
        ("   ", "anything"),
        ("éclat", "déclat"),
    ])
    def test_does_not_match_part_of_a_word_or_an_empty_allergy(
            self, allergy: str, name: str) -> None:
        assert rules.allergen_field([allergy], [lot(name)], None) is None

    def test_names_the_first_matching_product(self) -> None:
        products = [lot("Saline"), lot("Lidocaine HCl"), lot("lidocaine again")]
        assert rules.allergen_field(["lidocaine"], products, None) == "products[1].name"

    def test_an_anaesthetic_matching_an_allergy_is_named(self) -> None:
        assert rules.allergen_field(["lidocaine"], [lot("Saline")],
                                    "Lidocaine 1% cream") == "anaesthetic"

    def test_no_anaesthetic_and_unrelated_products_match_nothing(self) -> None:
        assert rules.allergen_field(["penicillin", "latex"], [lot("Saline")], None) is None


class TestSpacingRule:
    def test_session_two_and_three_use_phase_one(self) -> None:
        s = state()
        phase1 = SpacingRule(14, 21, 28)
        assert rules.spacing_rule(s, 2).as_dict() == phase1.as_dict()
        assert rules.spacing_rule(s, 3).as_dict() == phase1.as_dict()

    def test_session_four_and_beyond_use_the_open_ended_phase_two(self) -> None:
        s = state()
        assert rules.spacing_rule(s, 4).as_dict() == SpacingRule(14, 14, 21).as_dict()
        assert rules.spacing_rule(s, 19).as_dict() == SpacingRule(14, 14, 21).as_dict()

    def test_hair_restoration_changes_phase_at_session_five(self) -> None:
        s = state("hair_restoration", planned=8)
        assert rules.spacing_rule(s, 4).min_days == 7
        assert rules.spacing_rule(s, 5).as_dict() == SpacingRule(14, 21, 28).as_dict()

    def test_an_adjusted_interval_governs_every_later_session(self) -> None:
        s = state()
        s.adjusted = SpacingRule(30, 35, 40, source="adjust")
        assert rules.spacing_rule(s, 2) == s.adjusted
        assert rules.spacing_rule(s, 4) == s.adjusted

    def test_maintenance_uses_the_maintenance_rule_not_an_earlier_adjustment(self) -> None:
        s = state()
        s.adjusted = SpacingRule(30, 35, 40, source="adjust")
        s.in_maintenance = True
        assert rules.spacing_rule(s, 5).as_dict() == SpacingRule(90, 120, 180).as_dict()

    def test_an_adjustment_made_during_maintenance_governs_maintenance(self) -> None:
        s = state()
        s.in_maintenance = True
        s.adjusted = SpacingRule(60, 70, 80, source="adjust")
        s.adjusted_in_maintenance = True
        assert rules.spacing_rule(s, 6) == s.adjusted

    def test_the_rule_records_its_protocol_source(self) -> None:
        assert rules.spacing_rule(state(), 4).source == \
            "default/skin_rejuvenation v1 phase 2"


class TestNextWindow:
    def test_an_open_course_has_no_next_session(self) -> None:
        assert rules.next_window(state(), PARIS) is None

    @pytest.mark.parametrize("status", ["completed", "discontinued"])
    def test_a_closed_course_has_no_next_session(self, status: str) -> None:
        s = consulted(state())
        s.status = status
        assert rules.next_window(s, PARIS) is None

    def test_session_one_is_due_on_the_consultation_local_date_with_no_latest(self) -> None:
        s = consulted(state(), at="2026-09-01T23:30:00Z")  # 01:30 on 09-02 in Paris
        assert rules.next_window(s, PARIS) == {
            "session_no": 1, "earliest": "2026-09-02", "target": "2026-09-02",
            "latest": None, "planned_at": None, "screening_valid_until": None}

    def test_later_sessions_add_the_rule_days_to_the_previous_local_date(self) -> None:
        s = consulted(state())
        s.sessions.append(given(1, "2026-09-02T23:30:00+00:00"))  # 09-03 in Paris
        assert rules.next_window(s, PARIS) == {
            "session_no": 2, "earliest": "2026-09-17", "target": "2026-09-24",
            "latest": "2026-10-01", "planned_at": None, "screening_valid_until": None}

    def test_the_planned_time_of_the_next_session_is_shown(self) -> None:
        s = consulted(state())
        planned = ts("2026-09-03T10:00:00+02:00")
        s.scheduled = Scheduled(1, planned, None)
        window = rules.next_window(s, PARIS)
        assert window is not None
        assert window["planned_at"] == planned

    def test_a_paused_course_still_shows_its_window(self) -> None:
        s = consulted(state())
        s.status = "paused"
        window = rules.next_window(s, PARIS)
        assert window is not None
        assert window["session_no"] == 1


class TestBlockedBy:
    def test_an_unconsulted_course_is_blocked_by_no_consultation(self) -> None:
        assert rules.blocked_by(state(), erased=False) == ["NO_CONSULTATION"]

    def test_a_ready_course_is_not_blocked(self) -> None:
        assert rules.blocked_by(consulted(state()), erased=False) == []

    def test_codes_are_listed_sorted(self) -> None:
        s = consulted(state(), consent=False, absolute=("PREGNANCY",))
        s.status = "paused"
        s.sessions = [given(n, f"2026-09-0{n}T09:00:00Z") for n in (1, 2, 3, 4)]
        s.reactions.append(Reaction(4, "swelling", 3, ts("2026-09-05T09:00:00Z"), "dr-ada"))
        codes = rules.blocked_by(s, erased=True)
        assert codes == ["CONTRAINDICATED", "COURSE_PAUSED", "NO_CONSENT", "PATIENT_ERASED",
                         "PLAN_EXCEEDED", "REACTION_UNREVIEWED"]
        assert codes == sorted(codes)

    def test_an_overridden_absolute_code_no_longer_blocks(self) -> None:
        s = consulted(state(), absolute=("PREGNANCY",))
        assert rules.blocked_by(s, erased=False) == ["CONTRAINDICATED"]
        s.overrides["PREGNANCY"] = Override("PREGNANCY", "negative test on the day",
                                            "dr-ada", ts("2026-09-01T10:00:00+02:00"))
        assert rules.blocked_by(s, erased=False) == []

    def test_a_reviewed_severe_reaction_no_longer_blocks(self) -> None:
        s = consulted(state())
        s.sessions.append(given(1, "2026-09-02T09:00:00Z"))
        reaction = Reaction(1, "swelling", 3, ts("2026-09-03T09:00:00Z"), "dr-ada")
        s.reactions.append(reaction)
        assert rules.blocked_by(s, erased=False) == ["REACTION_UNREVIEWED"]
        reaction.reviewed_at = ts("2026-09-04T09:00:00Z")
        assert rules.blocked_by(s, erased=False) == []

    def test_a_mild_reaction_never_blocks(self) -> None:
        s = consulted(state())
        s.sessions.append(given(1, "2026-09-02T09:00:00Z"))
        s.reactions.append(Reaction(1, "redness", 2, ts("2026-09-03T09:00:00Z"), "dr-ada"))
        assert rules.blocked_by(s, erased=False) == []

    @pytest.mark.parametrize("status", ["completed", "discontinued"])
    def test_a_closed_course_lists_course_closed_alone(self, status: str) -> None:
        s = consulted(state(), consent=False, absolute=("PREGNANCY",))
        s.status = status
        assert rules.blocked_by(s, erased=False) == ["COURSE_CLOSED"]

    def test_a_closed_course_of_an_erased_patient_lists_both(self) -> None:
        s = consulted(state())
        s.status = "discontinued"
        assert rules.blocked_by(s, erased=True) == ["COURSE_CLOSED", "PATIENT_ERASED"]

    def test_maintenance_sessions_are_not_counted_against_the_plan(self) -> None:
        s = consulted(state())
        s.sessions = [given(n, f"2026-09-0{n}T09:00:00Z") for n in (1, 2, 3, 4)]
        assert rules.blocked_by(s, erased=False) == ["PLAN_EXCEEDED"]
        s.in_maintenance, s.status = True, "maintenance"
        assert rules.blocked_by(s, erased=False) == []


def practitioner(role: str, expires: str = "2026-12-31") -> rules.Practitioner:
    return rules.Practitioner("p1", role, dt.date.fromisoformat(expires))


ON = dt.date(2026, 9, 1)


class TestAuthorize:
    def test_an_unregistered_actor_is_not_authorized(self) -> None:
        with pytest.raises(Rejected) as info:
            rules.authorize(None, "report", "stranger", ON)
        assert info.value.code == Code.NOT_AUTHORIZED
        assert info.value.field == "actor"

    @pytest.mark.parametrize(("role", "act"), [
        ("nurse", "override"), ("nurse", "review"), ("nurse", "extend"),
        ("aesthetician", "inject"), ("aesthetician", "consult"), ("aesthetician", "adjust"),
        ("aesthetician", "override"),
    ])
    def test_a_role_may_not_perform_acts_beyond_it(self, role: str, act: str) -> None:
        with pytest.raises(Rejected) as info:
            rules.authorize(practitioner(role), act, "p1", ON)
        assert info.value.code == Code.NOT_AUTHORIZED

    @pytest.mark.parametrize(("role", "act"), [
        ("physician", act) for act in rules.PERMISSIONS
    ] + [("nurse", act) for act in ("consult", "inject", "adjust", "report", "schedule")] + [
        ("aesthetician", act) for act in ("report", "schedule", "pause", "resume", "complete",
                                          "discontinue")
    ])
    def test_a_role_may_perform_its_acts(self, role: str, act: str) -> None:
        rules.authorize(practitioner(role), act, "p1", ON)

    def test_a_licence_is_valid_through_its_expiry_date_inclusive(self) -> None:
        rules.authorize(practitioner("physician", "2026-09-01"), "inject", "p1", ON)

    def test_a_licence_has_expired_the_day_after_its_expiry_date(self) -> None:
        with pytest.raises(Rejected) as info:
            rules.authorize(practitioner("physician", "2026-08-31"), "inject", "p1", ON)
        assert info.value.code == Code.NOT_AUTHORIZED


PHASE_1 = SpacingRule(14, 21, 28, source="phase 1")


def judged(*, rule: SpacingRule | None = PHASE_1,
           gap: int | None = 21, reason: str | None = None,
           cautions: tuple[str, ...] = (), overrides: tuple[Override, ...] = ()) -> list[str]:
    session = GivenSession(session_no=2, at=ts("2026-09-22T09:00:00Z"), actor="dr-ada",
                           products=(), maintenance=False, rule=rule, gap_days=gap,
                           spacing_override_reason=reason, cautions=cautions,
                           overrides=overrides)
    return [code for code, _ in rules.judge_session(session)]


class TestJudgeSession:
    def test_a_session_within_its_rule_has_no_finding(self) -> None:
        assert judged(gap=14) == []
        assert judged(gap=28) == []

    def test_the_first_session_has_no_spacing_finding(self) -> None:
        assert judged(rule=None, gap=None) == []

    def test_sooner_than_the_minimum_is_spacing_overridden(self) -> None:
        assert judged(gap=13, reason="leaves the country") == ["SPACING_OVERRIDDEN"]

    def test_later_than_the_maximum_is_spacing_exceeded(self) -> None:
        assert judged(gap=29) == ["SPACING_EXCEEDED"]

    def test_relative_codes_in_force_are_given_with_cautions(self) -> None:
        assert judged(cautions=("DIABETES",)) == ["GIVEN_WITH_CAUTIONS"]

    def test_an_overridden_absolute_code_is_contraindication_overridden(self) -> None:
        override = Override("PREGNANCY", "negative test", "dr-ada",
                            ts("2026-09-01T10:00:00Z"))
        assert judged(overrides=(override,)) == ["CONTRAINDICATION_OVERRIDDEN"]
