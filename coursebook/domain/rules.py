"""The rules of docs/reference.md (sections 5-8) as pure functions, each written once.

The aggregate calls them to refuse commands; the projections call them to judge what was
recorded. Nothing here reads a clock, a store or a global: time and zone come in as data.

Each refusal rule is a function named after the rejection code it decides (`course_paused`,
`plan_exceeded`, ...) that returns a `Refusal` (code, reason, field, the rules and protocol
version used) or None. `session_refusals` lists, in the contract's check order, the ones a
session meets for reasons of state: all of them, sorted, are `blocked_by`, and the
aggregate refuses with the one `first_refusal` picks among them and the checks of the
command's input (NOT_AUTHORIZED, ALLERGEN, ...): the first the contract checks, which is
the list's first whenever the input is sound.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any, Literal
from zoneinfo import ZoneInfo

import attrs

from coursebook.domain.course_state import CourseState, GivenSession
from coursebook.domain.protocols import Safety
from coursebook.domain.values import Product, Protocol, SpacingRule
from coursebook.errors import Code, Rejected

__all__ = [
    "ABSOLUTE",
    "CONTRAINDICATIONS",
    "FUTURE_FACT_TOLERANCE",
    "RELATIVE",
    "ROLES",
    "RULES_VERSION",
    "SCREENING_FLAGS",
    "Contraindication",
    "Practitioner",
    "Refusal",
    "SpacingDecision",
    "aftercare_missing",
    "allergen",
    "allergen_field",
    "authorize",
    "below_protocol_adjustment",
    "blocked_by",
    "blood_thinner_named",
    "contraindicated",
    "contraindications_from",
    "course_closed",
    "course_paused",
    "days_between",
    "first_refusal",
    "follow_up_missed",
    "follow_up_status",
    "follow_up_unmet",
    "future_fact",
    "interval_below_protocol",
    "judge_session",
    "local_date",
    "lot_expired",
    "next_window",
    "no_consent",
    "no_consultation",
    "not_authorized",
    "out_of_order",
    "patient_erased",
    "plan_exceeded",
    "protocol_rule",
    "reaction_unreviewed",
    "screening_inconsistent",
    "screening_stale",
    "screening_valid_until",
    "session_refusals",
    "spacing_decision",
    "spacing_rule",
    "spacing_rule_for",
]

RULES_VERSION = "coursebook-rules/1"
"""Recorded with every decision, so a replay years later can tell which rules made it."""

FUTURE_FACT_TOLERANCE = dt.timedelta(minutes=5)


@attrs.frozen
class Contraindication:
    """The contraindication a "yes" to one screening question raises."""

    code: str
    kind: Literal["absolute", "relative"]
    """An absolute code blocks sessions until a physician overrides it; a relative code
    never blocks, it is a caution."""


CONTRAINDICATIONS: dict[str, Contraindication] = {
    "pregnant": Contraindication("PREGNANCY", "absolute"),
    "breastfeeding": Contraindication("BREASTFEEDING", "absolute"),
    "active_infection_at_site": Contraindication("ACTIVE_INFECTION", "absolute"),
    "bleeding_disorder": Contraindication("BLEEDING_DISORDER", "absolute"),
    "anticoagulants": Contraindication("ANTICOAGULANTS", "relative"),
    "autoimmune_disease": Contraindication("AUTOIMMUNE_DISEASE", "relative"),
    "diabetes": Contraindication("DIABETES", "relative"),
    "heart_condition": Contraindication("HEART_CONDITION", "relative"),
}
"""The contraindication table (docs/reference.md, section 7), the one declaration of the
screening questions: screening flag -> the code it raises and its kind, in that order."""

SCREENING_FLAGS = tuple(CONTRAINDICATIONS)
"""The yes/no questions of every consultation's screening, in the contract's order."""
ABSOLUTE = {flag: c.code for flag, c in CONTRAINDICATIONS.items() if c.kind == "absolute"}
RELATIVE = {flag: c.code for flag, c in CONTRAINDICATIONS.items() if c.kind == "relative"}

# Which roles may perform which act (docs/reference.md, section 5).
ROLES = ("physician", "nurse", "aesthetician")
_EVERY_ROLE = frozenset(ROLES)
PERMISSIONS: dict[str, frozenset[str]] = {
    "consult": frozenset({"physician", "nurse"}),
    "inject": frozenset({"physician", "nurse"}),
    "adjust": frozenset({"physician", "nurse"}),
    "override": frozenset({"physician"}),
    "review": frozenset({"physician"}),
    "extend": frozenset({"physician"}),
    "report": _EVERY_ROLE, "schedule": _EVERY_ROLE, "pause": _EVERY_ROLE,
    "resume": _EVERY_ROLE, "complete": _EVERY_ROLE, "discontinue": _EVERY_ROLE,
    "follow_up": frozenset({"physician", "nurse"}),
    "withdraw": _EVERY_ROLE,
}


@attrs.frozen
class Refusal:
    """One rule's decision against a command."""

    code: Code
    reason: str
    """The human message: names fields, codes, ids and numbers, never personal data."""
    field: str | None = None
    """The input at fault, or None when the course's state is."""
    protocol: str | None = None
    """The label of the protocol of the course decided on (`Protocol.label`), None when
    no course's state took part."""
    rules_version: str = RULES_VERSION

    def rejected(self) -> Rejected:
        return Rejected(self.code, self.reason, self.field)


_CHECK_ORDER = {code: rank for rank, code in enumerate(Code)}


def first_refusal(refusals: Iterable[Refusal | None]) -> Refusal | None:
    """The refusal a command meets when it breaks several rules: the first in the
    contract's check order (the order `Code` lists), the earliest given on a tie."""
    found = [refusal for refusal in refusals if refusal is not None]
    return min(found, key=lambda refusal: _CHECK_ORDER[refusal.code], default=None)


@attrs.frozen
class Practitioner:
    """What the rules need to know of a practitioner."""

    practitioner_id: str
    role: str
    license_expires_on: dt.date


def local_date(instant: dt.datetime, zone: ZoneInfo) -> dt.date:
    return instant.astimezone(zone).date()


def days_between(earlier: dt.datetime, later: dt.datetime, zone: ZoneInfo) -> int:
    """Calendar days in the clinic zone: local_date(later) - local_date(earlier)."""
    return (local_date(later, zone) - local_date(earlier, zone)).days


def future_fact(at: dt.datetime, now: dt.datetime) -> Refusal | None:
    """FUTURE_FACT when a fact's `at` lies beyond the clock's `now` and its tolerance."""
    if at > now + FUTURE_FACT_TOLERANCE:
        return Refusal(Code.FUTURE_FACT, "at: a fact cannot lie in the future", "at")
    return None


def patient_erased(erased: bool) -> Refusal | None:
    """PATIENT_ERASED for any change to a course whose patient was erased."""
    if erased:
        return Refusal(Code.PATIENT_ERASED, "the patient of this course was erased")
    return None


def course_closed(state: CourseState) -> Refusal | None:
    """COURSE_CLOSED for a course completed without maintenance, or discontinued."""
    if state.closed:
        return Refusal(Code.COURSE_CLOSED, f"the course is {state.status}",
                       protocol=state.protocol.label)
    return None


def course_paused(state: CourseState) -> Refusal | None:
    """COURSE_PAUSED for scheduling or giving a session on a paused course."""
    if state.status == "paused":
        return Refusal(Code.COURSE_PAUSED, "the course is paused",
                       protocol=state.protocol.label)
    return None


def not_authorized(practitioner: Practitioner | None, act: str, actor: str,
                   on: dt.date) -> Refusal | None:
    """NOT_AUTHORIZED unless `actor` is registered, may do `act`, and is licensed on `on`."""
    if practitioner is None:
        return Refusal(Code.NOT_AUTHORIZED,
                       f"actor {actor!r} is not a registered practitioner", "actor")
    if practitioner.role not in PERMISSIONS[act]:
        article = "an" if practitioner.role[:1] in "aeiou" else "a"
        return Refusal(Code.NOT_AUTHORIZED,
                       f"{article} {practitioner.role} may not {act} (actor {actor!r})",
                       "actor")
    if practitioner.license_expires_on < on:
        return Refusal(Code.NOT_AUTHORIZED,
                       f"the licence of {actor!r} expired on "
                       f"{practitioner.license_expires_on.isoformat()}", "actor")
    return None


def authorize(practitioner: Practitioner | None, act: str, actor: str,
              on: dt.date) -> None:
    """Raises `not_authorized`'s refusal, if any."""
    refusal = not_authorized(practitioner, act, actor, on)
    if refusal is not None:
        raise refusal.rejected()


def no_consultation(state: CourseState) -> Refusal | None:
    """NO_CONSULTATION for a session before any consultation."""
    if state.consultation_at is None:
        return Refusal(Code.NO_CONSULTATION, "no consultation has been recorded",
                       protocol=state.protocol.label)
    return None


def no_consent(state: CourseState) -> Refusal | None:
    """NO_CONSENT when the latest consultation has `consent: false`, or consent was
    withdrawn since it (until a later consultation with consent)."""
    if state.consent_withdrawn:
        return Refusal(Code.NO_CONSENT, "the patient withdrew consent; a consultation "
                       "with consent is needed", protocol=state.protocol.label)
    if state.consent is False:
        return Refusal(Code.NO_CONSENT, "the latest consultation has no consent",
                       protocol=state.protocol.label)
    return None


def _catalogue_label(state: CourseState) -> str:
    return f"{state.catalogue.get('name', '?')}@{state.catalogue.get('version', '?')}"


def screening_valid_until(state: CourseState, zone: ZoneInfo) -> dt.date | None:
    """The last local date on which a session may be given on the screening in force
    (`screening_valid_days` after the consultation's local date); None without a
    consultation or without the parameter."""
    days = state.safety.screening_valid_days
    if days is None or state.consultation_at is None:
        return None
    return local_date(state.consultation_at, zone) + dt.timedelta(days=days)


def screening_stale(state: CourseState, on: dt.date, zone: ZoneInfo) -> Refusal | None:
    """SCREENING_STALE for a session given on local date `on` after the screening's last
    valid day (catalogue parameter `screening_valid_days`)."""
    until = screening_valid_until(state, zone)
    if until is not None and on > until:
        return Refusal(Code.SCREENING_STALE, f"the screening of the consultation in force "
                       f"was valid through {until.isoformat()} ({_catalogue_label(state)} "
                       f"screening_valid_days {state.safety.screening_valid_days}); record "
                       "a new consultation", protocol=state.protocol.label)
    return None


def contraindicated(state: CourseState) -> Refusal | None:
    """CONTRAINDICATED while an absolute code of the latest consultation is in force and
    not overridden under it."""
    blocking = [code for code in state.absolute if code not in state.overrides]
    if blocking:
        return Refusal(Code.CONTRAINDICATED,
                       f"absolute contraindication(s) in force: {', '.join(blocking)}",
                       protocol=state.protocol.label)
    return None


def contraindications_from(screening: dict[str, Any], safety: Safety | None = None,
                           ) -> tuple[list[str], list[str], list[str]]:
    """Absolute and relative codes derived from screening answers, and the codes among
    them that only the medication list put in force: a listed blood thinner
    (`safety.blood_thinners`) puts ANTICOAGULANTS in force even when `anticoagulants`
    is false."""
    absolute = [code for flag, code in ABSOLUTE.items() if screening[flag]]
    from_medications: list[str] = []
    flags = dict(screening)
    if safety is not None and not flags["anticoagulants"] and blood_thinner_named(
            screening.get("medications", ()), safety.blood_thinners):
        flags["anticoagulants"] = True
        from_medications.append(RELATIVE["anticoagulants"])
    relative = [code for flag, code in RELATIVE.items() if flags[flag]]
    return absolute, relative, from_medications


def blood_thinner_named(medications: Iterable[str], blood_thinners: Iterable[str]) -> bool:
    """Whether a medication names a listed blood thinner, matched as allergies are
    (case-folded, trimmed, a whole word or phrase)."""
    names = list(blood_thinners)
    return any(_matches(name, medication) for medication in medications for name in names)


def _normalise(text: str) -> str:
    return text.casefold().strip()


def _matches(allergy: str, target: str) -> bool:
    a, t = _normalise(allergy), _normalise(target)
    if not a:
        return False
    if a == t:
        return True
    # A whole word or phrase: bounded by non-letters (digits and punctuation count as bounds).
    return re.search(r"(?<![^\W\d_])" + re.escape(a) + r"(?![^\W\d_])", t) is not None


def allergen_field(allergies: Iterable[str], products: Iterable[Product],
                   anaesthetic: str | None) -> str | None:
    """The field (never the allergy itself: that is personal data) matching an allergy."""
    allergies = list(allergies)
    for i, product in enumerate(products):
        if any(_matches(a, product.name) for a in allergies):
            return f"products[{i}].name"
    if anaesthetic is not None and any(_matches(a, anaesthetic) for a in allergies):
        return "anaesthetic"
    return None


def allergen(allergies: Iterable[str], products: Iterable[Product],
             anaesthetic: str | None) -> Refusal | None:
    """ALLERGEN when a product or the anaesthetic matches an allergy (no override)."""
    at_fault = allergen_field(allergies, products, anaesthetic)
    if at_fault is not None:
        return Refusal(Code.ALLERGEN, f"{at_fault}: matches an allergy listed at "
                       "consultation", at_fault)
    return None


def lot_expired(products: Iterable[Product], on: dt.date) -> Refusal | None:
    """LOT_EXPIRED for the first product whose `expires_on` is before the local date `on`."""
    for i, product in enumerate(products):
        if product.expires_on < on:
            return Refusal(Code.LOT_EXPIRED, f"products[{i}].expires_on: the lot expired "
                           f"on {product.expires_on.isoformat()}", f"products[{i}].expires_on")
    return None


def reaction_unreviewed(state: CourseState) -> Refusal | None:
    """REACTION_UNREVIEWED for a new session while a reaction of severity 3 or more, or
    of a serious kind (`safety.serious_reaction_kinds`), awaits `review_reaction`."""
    if state.pending_reviews():
        return Refusal(Code.REACTION_UNREVIEWED,
                       "a reaction of severity 3 or more, or of a serious kind, awaits a "
                       "physician's review", protocol=state.protocol.label)
    return None


def plan_exceeded(state: CourseState, session_no: int) -> Refusal | None:
    """PLAN_EXCEEDED for a session beyond `planned_sessions`, outside maintenance."""
    if not state.in_maintenance and session_no > state.planned_sessions:
        return Refusal(Code.PLAN_EXCEEDED, f"session {session_no} is beyond the "
                       f"{state.planned_sessions} planned", "session_no",
                       protocol=state.protocol.label)
    return None


def out_of_order(state: CourseState, at: dt.datetime) -> Refusal | None:
    """OUT_OF_ORDER for a session given before the previous session, before the
    consultation in force, or (a maintenance session) before the completion that began
    maintenance."""
    last = state.last_session
    if last is not None and at < last.at:
        return Refusal(Code.OUT_OF_ORDER, f"at: before session {last.session_no}", "at",
                       protocol=state.protocol.label)
    if state.consultation_at is not None and at < state.consultation_at:
        return Refusal(Code.OUT_OF_ORDER, "at: before the consultation in force", "at",
                       protocol=state.protocol.label)
    if state.completed_at is not None and at < state.completed_at:
        return Refusal(Code.OUT_OF_ORDER, "at: before the completion that began "
                       "maintenance", "at", protocol=state.protocol.label)
    return None


def session_refusals(state: CourseState, *, erased: bool, session_no: int | None = None,
                     booking: bool = False) -> list[Refusal]:
    """Every refusal that a `give_session` of `session_no` (default: the next) would now
    meet for reasons of state, in the contract's check order, so the first is the one it
    meets. With `booking`, those of a `schedule_session` or `reschedule_session`, which
    a pending reaction review does not stop. Where COURSE_CLOSED applies it stands alone
    (after PATIENT_ERASED, if that applies too): nothing else about a closed course
    matters. The checks of the command's input that the contract orders among these
    (NOT_AUTHORIZED, ALLERGEN, LOT_EXPIRED) are the caller's, to rank with
    `first_refusal`."""
    closed = course_closed(state)
    if closed is not None:
        return [r for r in (patient_erased(erased), closed) if r is not None]
    n = state.next_session_no if session_no is None else session_no
    found = (patient_erased(erased), course_paused(state), no_consultation(state),
             no_consent(state), contraindicated(state),
             None if booking else reaction_unreviewed(state), plan_exceeded(state, n))
    return [r for r in found if r is not None]


def spacing_rule_for(protocol: Protocol, session_no: int, *, in_maintenance: bool,
                     adjusted: SpacingRule | None,
                     adjusted_in_maintenance: bool) -> SpacingRule:
    """The spacing rule (docs/reference.md, section 8) for the gap between session
    `session_no - 1` and `session_no`: the protocol's phase, unless an `adjust_interval`
    was recorded since (`adjusted`); in maintenance, the maintenance rule, unless the
    adjustment was itself recorded during maintenance (`adjusted_in_maintenance`)."""
    if in_maintenance:
        if adjusted is not None and adjusted_in_maintenance:
            return adjusted
        if protocol.maintenance is not None:
            return protocol.maintenance
    if adjusted is not None:
        return adjusted
    return protocol.rule_for(session_no)


def protocol_rule(protocol: Protocol, session_no: int, *, in_maintenance: bool) -> SpacingRule:
    """The protocol's own rule for session `session_no`, whatever was adjusted: the
    maintenance rule in maintenance, else its phase rule."""
    if in_maintenance and protocol.maintenance is not None:
        return protocol.maintenance
    return protocol.rule_for(session_no)


def below_protocol_adjustment(state: CourseState, min_days: int,
                              practitioner: Practitioner | None, actor: str) -> Refusal | None:
    """NOT_AUTHORIZED (catalogue parameter `below_protocol_min_needs_physician`) for an
    `adjust_interval` by anyone but a physician whose `min_days` is below the protocol's
    own rule for the next session ("below" is strict)."""
    if not state.safety.below_protocol_min_needs_physician:
        return None
    own = protocol_rule(state.protocol, state.next_session_no,
                        in_maintenance=state.in_maintenance)
    if min_days < own.min_days and (practitioner is None
                                    or practitioner.role != "physician"):
        return Refusal(Code.NOT_AUTHORIZED,
                       f"min_days {min_days} is below the protocol's {own.min_days} for "
                       f"session {state.next_session_no}: only a physician may shorten it "
                       f"({_catalogue_label(state)} below_protocol_min_needs_physician)",
                       "min_days", protocol=state.protocol.label)
    return None


def spacing_rule(state: CourseState, session_no: int) -> SpacingRule:
    """The rule governing the gap between session `session_no - 1` and `session_no`."""
    return spacing_rule_for(state.protocol, session_no, in_maintenance=state.in_maintenance,
                            adjusted=state.adjusted,
                            adjusted_in_maintenance=state.adjusted_in_maintenance)


@attrs.frozen
class SpacingDecision:
    """How a session at a given moment stands to the spacing rule: the rule (its `source`
    names the protocol and version, or the adjustment), the gap in calendar days since
    the previous session, and TOO_SOON when the gap is short of the rule's `min_days`
    without a `spacing_override_reason`. Before session 2, no rule and no gap."""

    rule: SpacingRule | None
    gap_days: int | None
    refusal: Refusal | None = None


def spacing_decision(state: CourseState, session_no: int, when: dt.datetime,
                     zone: ZoneInfo, override_reason: str | None) -> SpacingDecision:
    """The spacing of session `session_no` given (or planned) at `when`."""
    last = state.last_session
    if last is None or session_no < 2:
        return SpacingDecision(None, None)
    rule = spacing_rule(state, session_no)
    gap = days_between(last.at, when, zone)
    if gap < rule.min_days and override_reason is None:
        return SpacingDecision(rule, gap, Refusal(
            Code.TOO_SOON, f"{gap} day(s) after session {last.session_no}; the rule "
            f"({rule.source}) needs at least {rule.min_days}", "spacing_override_reason",
            protocol=state.protocol.label))
    return SpacingDecision(rule, gap)


def next_window(state: CourseState, zone: ZoneInfo) -> dict[str, Any] | None:
    """The next-session window (docs/reference.md, "Next-session window"), dates in the
    clinic zone."""
    if state.status in ("open", "completed", "discontinued"):
        return None
    n = state.next_session_no
    planned = (state.scheduled.planned_at if state.scheduled is not None
               and state.scheduled.session_no == n else None)
    last = state.last_session
    if last is None:
        if state.consultation_at is None:
            return None
        day = local_date(state.consultation_at, zone).isoformat()
        earliest, target, latest = day, day, None
    else:
        rule = spacing_rule(state, n)
        base = local_date(last.at, zone)
        earliest = (base + dt.timedelta(days=rule.min_days)).isoformat()
        target = (base + dt.timedelta(days=rule.target_days)).isoformat()
        latest = (base + dt.timedelta(days=rule.max_days)).isoformat()
    until = screening_valid_until(state, zone)
    return {"session_no": n, "earliest": earliest, "target": target, "latest": latest,
            "planned_at": planned,
            "screening_valid_until": None if until is None else until.isoformat()}


def blocked_by(state: CourseState, *, erased: bool) -> list[str]:
    """The codes a `give_session` now would meet for reasons of state, sorted
    (docs/reference.md, "Course"): the codes of `session_refusals`."""
    return sorted(str(refusal.code) for refusal in session_refusals(state, erased=erased))


def interval_below_protocol(session: GivenSession, safety: Safety) -> dict[str, Any] | None:
    """INTERVAL_BELOW_PROTOCOL (parameter `below_protocol_min_needs_physician`): the
    session was given under an adjusted rule whose `min_days` is below the protocol's own
    rule for that session; the detail names both, who adjusted and why."""
    adjustment, own = session.adjustment, session.protocol_rule
    if not safety.below_protocol_min_needs_physician or adjustment is None or own is None:
        return None
    if adjustment.rule.min_days >= own.min_days:
        return None
    return {"protocol_min_days": own.min_days, "min_days": adjustment.rule.min_days,
            "adjusted_by": adjustment.by, "reason": adjustment.reason,
            "adjusted_at": adjustment.at.isoformat(), "rule": adjustment.rule.source}


def aftercare_missing(session: GivenSession, safety: Safety) -> bool:
    """AFTERCARE_NOT_RECORDED (parameter `aftercare_required`): given without aftercare."""
    return safety.aftercare_required and session.aftercare is None


def screening_inconsistent(from_medications: Iterable[str]) -> dict[str, Any] | None:
    """SCREENING_INCONSISTENT: a consultation whose medication list named a listed blood
    thinner while `anticoagulants` was false. The detail names the code and where it
    came from, never the medication."""
    codes = list(from_medications)
    if not codes:
        return None
    return {"code": codes[0], "source": "medications"}


def follow_up_status(state: CourseState, zone: ZoneInfo) -> dict[str, Any] | None:
    """`{"session_no", "due", "latest", "done_at"}` of the follow-up the catalogue
    (`follow_up`) asks for, local dates; None without the parameter or before that
    session is given. `done_at`: the `at` of the first follow-up recorded for it."""
    rule = state.safety.follow_up
    if rule is None:
        return None
    session = state.session(rule.after_session)
    if session is None:
        return None
    day = local_date(session.at, zone)
    done = [f.at for f in state.follow_ups if f.session_no == rule.after_session]
    return {"session_no": rule.after_session,
            "due": (day + dt.timedelta(days=rule.due_days)).isoformat(),
            "latest": (day + dt.timedelta(days=rule.due_days + rule.grace_days)).isoformat(),
            "done_at": min(done) if done else None}


def follow_up_missed(state: CourseState, as_of: dt.datetime,
                     zone: ZoneInfo) -> tuple[dt.datetime, dict[str, Any]] | None:
    """FOLLOW_UP_MISSED once the as-of local date is after the follow-up's last allowed
    day with no follow-up recorded on or before that day: (the start of the local day
    after it, detail). Whatever the course's status."""
    unmet = follow_up_unmet(state, zone)
    if unmet is None or not local_date(as_of, zone) > unmet[0]:
        return None
    return unmet[1], unmet[2]


def follow_up_unmet(state: CourseState,
                    zone: ZoneInfo) -> tuple[dt.date, dt.datetime, dict[str, Any]] | None:
    """The follow-up the catalogue asks for when none was recorded on or before its last
    allowed day: (that day, the start of the local day after it, detail), whatever the
    moment asked about; `follow_up_missed` holds once the as-of local date is past it."""
    status = follow_up_status(state, zone)
    if status is None:
        return None
    latest = dt.date.fromisoformat(status["latest"])
    in_time = [f for f in state.follow_ups if f.session_no == status["session_no"]
               and local_date(f.at, zone) <= latest]
    if in_time:
        return None
    ran_out = dt.datetime.combine(latest + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return latest, ran_out.astimezone(dt.UTC), {"due": status["due"],
                                                 "latest": status["latest"]}


def judge_session(session: GivenSession) -> list[tuple[str, dict[str, Any]]]:
    """Findings about one given session, from the decision recorded with it."""
    findings: list[tuple[str, dict[str, Any]]] = []
    rule, gap = session.rule, session.gap_days
    if rule is not None and gap is not None:
        if gap < rule.min_days:
            findings.append(("SPACING_OVERRIDDEN", {
                "gap_days": gap, "min_days": rule.min_days, "rule": rule.source,
                "reason": session.spacing_override_reason}))
        elif gap > rule.max_days:
            findings.append(("SPACING_EXCEEDED", {
                "gap_days": gap, "max_days": rule.max_days, "rule": rule.source}))
    if session.overrides:
        findings.append(("CONTRAINDICATION_OVERRIDDEN", {
            "codes": [o.code for o in session.overrides],
            "justifications": [o.justification for o in session.overrides],
            "overridden_by": [o.by for o in session.overrides]}))
    if session.cautions:
        findings.append(("GIVEN_WITH_CAUTIONS", {"codes": list(session.cautions)}))
    return findings
