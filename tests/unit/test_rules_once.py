"""Each rule is written once: the refusal of `give_session` and `blocked_by` come from the
same ordered list of state refusals (`rules.session_refusals`), so they never disagree.

For every state below, `give_session` (by a licensed physician, with clean products and a
stated spacing reason, so that only the course's state can refuse it) is refused with the
first code of that list, or accepted when it is empty; and `blocked_by` is the list's
codes, sorted, as CONTRACT section 5 describes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursebook.domain import rules
from coursebook.domain.course import Context, TreatmentCourse
from coursebook.domain.course_state import CourseState, GivenSession, Override, Reaction
from coursebook.domain.ids import course_uuid
from coursebook.domain.protocols import default_catalogue
from coursebook.domain.values import Product
from coursebook.errors import Code, Rejected
from tests.builders import Clinic, day

EARLY = "booked early on purpose, to test the state alone"
"""The spacing reason every attempt states: spacing is not a rule of state."""


def give_four(clinic: Clinic) -> None:
    for n, d in enumerate((1, 15, 29, 43), start=1):
        clinic.give(at=day(d), session_no=n)


def erase(clinic: Clinic) -> None:
    clinic.run("erase_patient", at=day(50, 10), actor="admin", patient_ref="P1",
               reason="GDPR request")


def discontinue(clinic: Clinic) -> None:
    clinic.run("discontinue_course", at=day(50), course_id="C1", reason="moved away")


def override_pregnancy(clinic: Clinic) -> None:
    clinic.run("override_contraindication", at=day(0, 10), course_id="C1",
               code="PREGNANCY", justification="negative test on the day, physician")


Setup = Callable[[Clinic], Any]


def steps(*actions: Setup) -> Setup:
    def run(clinic: Clinic) -> None:
        for action in actions:
            action(clinic)
    return run


# name: (how the course got there, whether its patient is erased, blocked_by per CONTRACT)
STATES: dict[str, tuple[Setup, bool, list[str]]] = {
    "opened and consulted": (Clinic.ready, False, []),
    "opened, never consulted": (Clinic.open, False, ["NO_CONSULTATION"]),
    "consulted without consent": (
        steps(Clinic.open, lambda c: c.consult(consent=False)), False, ["NO_CONSENT"]),
    "consulted, pregnant": (
        steps(Clinic.open, lambda c: c.consult(pregnant=True)), False, ["CONTRAINDICATED"]),
    "consulted without consent, pregnant": (
        steps(Clinic.open, lambda c: c.consult(consent=False, pregnant=True)), False,
        ["CONTRAINDICATED", "NO_CONSENT"]),
    "consulted, pregnancy overridden": (
        steps(Clinic.open, lambda c: c.consult(pregnant=True), override_pregnancy), False, []),
    "consulted, diabetic (a caution only)": (
        steps(Clinic.open, lambda c: c.consult(diabetes=True)), False, []),
    "paused before any consultation": (
        steps(Clinic.open, lambda c: c.pause(at=day(50))), False,
        ["COURSE_PAUSED", "NO_CONSULTATION"]),
    "paused while active": (
        steps(Clinic.ready, lambda c: c.pause(at=day(50))), False, ["COURSE_PAUSED"]),
    "a severe reaction awaits review": (
        steps(Clinic.ready, Clinic.give, Clinic.react), False, ["REACTION_UNREVIEWED"]),
    "a severe reaction reviewed": (
        steps(Clinic.ready, Clinic.give, Clinic.react, Clinic.review), False, []),
    "every planned session given": (steps(Clinic.ready, give_four), False, ["PLAN_EXCEEDED"]),
    "every planned session given, the last reacted to": (
        steps(Clinic.ready, give_four, lambda c: c.react(session_no=4, at=day(44))), False,
        ["PLAN_EXCEEDED", "REACTION_UNREVIEWED"]),
    "in maintenance": (
        steps(Clinic.ready, give_four, lambda c: c.complete(at=day(50))), False, []),
    "completed without maintenance": (
        steps(lambda c: c.ready(indication="fat_reduction"), Clinic.give,
              lambda c: c.complete(at=day(50))), False, ["COURSE_CLOSED"]),
    "discontinued, with no consent and pregnant": (
        steps(Clinic.open, lambda c: c.consult(consent=False, pregnant=True), discontinue),
        False, ["COURSE_CLOSED"]),
    "discontinued by a reaction's review": (
        steps(Clinic.ready, Clinic.give, Clinic.react,
              lambda c: c.review(decision="discontinue")), False, ["COURSE_CLOSED"]),
    "the patient erased, never consulted": (
        steps(Clinic.open, erase), True, ["NO_CONSULTATION", "PATIENT_ERASED"]),
    "the patient erased, paused": (
        steps(Clinic.ready, lambda c: c.pause(at=day(50)), erase), True,
        ["COURSE_PAUSED", "PATIENT_ERASED"]),
    "the patient erased, discontinued": (
        steps(Clinic.ready, discontinue, erase), True, ["COURSE_CLOSED", "PATIENT_ERASED"]),
}


def attempt(clinic: Clinic) -> Code | None:
    """The code `give_session` meets now, or None when it is accepted."""
    try:
        clinic.give(at=day(60), spacing_override_reason=EARLY)
    except Rejected as refused:
        return refused.code
    return None


def state_of(clinic: Clinic) -> CourseState:
    course: TreatmentCourse = clinic.app.repository.get(course_uuid("C1"))
    return course.state


@pytest.mark.parametrize("name", list(STATES))
class TestGiveSessionAndBlockedByShareOneOrderedRule:
    def test_blocked_by_lists_what_the_contract_describes(
            self, clinic: Clinic, name: str) -> None:
        setup, _, expected = STATES[name]
        setup(clinic)
        assert clinic.course()["blocked_by"] == expected

    def test_blocked_by_is_the_ordered_state_refusals_sorted(
            self, clinic: Clinic, name: str) -> None:
        setup, erased, expected = STATES[name]
        setup(clinic)
        refusals = rules.session_refusals(state_of(clinic), erased=erased)
        assert sorted(refusal.code for refusal in refusals) == expected
        assert [r.code for r in refusals] == sorted((r.code for r in refusals),
                                                    key=list(Code).index)

    def test_give_session_is_refused_with_the_first_state_refusal(
            self, clinic: Clinic, name: str) -> None:
        setup, erased, expected = STATES[name]
        setup(clinic)
        refusals = rules.session_refusals(state_of(clinic), erased=erased)
        met = attempt(clinic)
        assert met == (refusals[0].code if refusals else None)
        assert (met is None) == (expected == [])


# -- the same, over any state: the aggregate itself, built from a drawn `CourseState` --

PARIS = ZoneInfo("Europe/Paris")
T0 = dt.datetime(2026, 9, 1, 9, 0, tzinfo=PARIS)
NOW = T0 + dt.timedelta(days=90)
PROTOCOL = default_catalogue().get("skin_rejuvenation")
ABSOLUTE_CODES = sorted(rules.ABSOLUTE.values())
PHYSICIAN = rules.Practitioner("dr-ada", "physician", dt.date(2030, 12, 31))


def contract_blocked_by(*, status: str, erased: bool, consulted: bool, consent: bool,
                        in_force: set[str], overridden: set[str], pending: bool,
                        next_session_no: int, planned: int) -> list[str]:
    """CONTRACT section 5's `blocked_by`, read from the facts the state was drawn from."""
    if status in ("completed", "discontinued"):
        return ["COURSE_CLOSED"] + (["PATIENT_ERASED"] if erased else [])
    codes = {
        "PATIENT_ERASED": erased,
        "COURSE_PAUSED": status == "paused",
        "NO_CONSULTATION": not consulted,
        "NO_CONSENT": consulted and not consent,
        "CONTRAINDICATED": bool(in_force - overridden),
        "REACTION_UNREVIEWED": pending,
        "PLAN_EXCEEDED": status != "maintenance" and next_session_no > planned,
    }
    return sorted(code for code, applies in codes.items() if applies)


@settings(max_examples=300, deadline=None)
@given(status=st.sampled_from(["open", "active", "paused", "maintenance", "completed",
                               "discontinued"]),
       erased=st.booleans(), consulted=st.booleans(), consent=st.booleans(),
       in_force=st.sets(st.sampled_from(ABSOLUTE_CODES)),
       overridden=st.sets(st.sampled_from(ABSOLUTE_CODES)),
       sessions=st.integers(0, 6), pending=st.booleans(), planned=st.integers(3, 5))
def test_for_any_state_give_session_meets_the_first_code_blocked_by_sorts(
        status: str, erased: bool, consulted: bool, consent: bool, in_force: set[str],
        overridden: set[str], sessions: int, pending: bool, planned: int) -> None:
    assert PROTOCOL is not None
    ctx = Context(zone=PARIS, now=NOW, practitioner=PHYSICIAN, erased=erased,
                  command_id="cmd-give", at=NOW - dt.timedelta(days=1), actor="dr-ada")
    course = TreatmentCourse.open(ctx, course_id="C1", patient_ref="P1", protocol=PROTOCOL,
                                  planned_sessions=planned, patient=None)
    in_force = in_force if consulted else set()
    overridden &= in_force
    state = course.state
    state.status, state.in_maintenance = status, status == "maintenance"
    if consulted:
        state.consultation_at, state.consent = T0, consent
        state.absolute = tuple(sorted(in_force))
        state.overrides = {code: Override(code, "negative test on the day", "dr-ada", T0)
                           for code in overridden}
    state.sessions = [GivenSession(session_no=n, at=T0 + dt.timedelta(days=n), actor="dr-ada",
                                   products=(), maintenance=False, rule=None, gap_days=None,
                                   spacing_override_reason=None, cautions=(), overrides=())
                      for n in range(1, sessions + 1)]
    pending = pending and sessions > 0
    if pending:
        state.reactions = [Reaction(sessions, "swelling", 3, T0 + dt.timedelta(days=sessions),
                                    "dr-ada")]

    expected = contract_blocked_by(
        status=status, erased=erased, consulted=consulted, consent=consent,
        in_force=in_force, overridden=overridden, pending=pending,
        next_session_no=sessions + 1, planned=planned)
    refusals = rules.session_refusals(state, erased=erased)
    assert rules.blocked_by(state, erased=erased) == expected
    assert sorted(refusal.code for refusal in refusals) == expected
    met = give_session(course, ctx)
    first = refusals[0] if refusals else None
    assert (None if met is None else (met.code, met.message)) == (
        None if first is None else (first.code, first.reason))


def give_session(course: TreatmentCourse, ctx: Context) -> Rejected | None:
    """The refusal `give_session` meets (clean products, a stated spacing reason), or None."""
    try:
        course.give_session(ctx, products=[Product("Saline", "LOT-1", dt.date(2030, 1, 1))],
                            areas=["face"], dose_ml=1.0, anaesthetic=None,
                            spacing_override_reason=EARLY)
    except Rejected as refused:
        return refused
    return None
