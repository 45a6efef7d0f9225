"""The rules of docs/reference.md (sections 5 to 8) as pure functions.

The aggregate calls them to refuse commands; the projections call them to judge what was
recorded. Nothing here reads a clock, a store or a global: time and zone come in as data.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from coursebook.domain.course_state import CourseState, GivenSession
from coursebook.domain.values import Product, SpacingRule
from coursebook.errors import Code, Rejected

__all__ = [
    "ABSOLUTE", "FUTURE_FACT_TOLERANCE", "RELATIVE", "RULES_VERSION", "Practitioner",
    "allergen_field", "authorize", "blocked_by", "contraindications_from", "days_between",
    "judge_session", "local_date", "next_window", "spacing_rule",
]

RULES_VERSION = "coursebook-rules/1"
"""Recorded with every decision, so a replay years later can tell which rules made it."""

FUTURE_FACT_TOLERANCE = dt.timedelta(minutes=5)

ABSOLUTE = {"pregnant": "PREGNANCY", "breastfeeding": "BREASTFEEDING",
            "active_infection_at_site": "ACTIVE_INFECTION",
            "bleeding_disorder": "BLEEDING_DISORDER"}
RELATIVE = {"anticoagulants": "ANTICOAGULANTS", "autoimmune_disease": "AUTOIMMUNE_DISEASE",
            "diabetes": "DIABETES", "heart_condition": "HEART_CONDITION"}

# Which roles may perform which act (docs/reference.md, section 5).
_EVERY_ROLE = frozenset({"physician", "nurse", "aesthetician"})
PERMISSIONS: dict[str, frozenset[str]] = {
    "consult": frozenset({"physician", "nurse"}),
    "inject": frozenset({"physician", "nurse"}),
    "adjust": frozenset({"physician", "nurse"}),
    "override": frozenset({"physician"}),
    "review": frozenset({"physician"}),
    "extend": frozenset({"physician"}),
    "report": _EVERY_ROLE, "schedule": _EVERY_ROLE, "pause": _EVERY_ROLE,
    "resume": _EVERY_ROLE, "complete": _EVERY_ROLE, "discontinue": _EVERY_ROLE,
}


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


def authorize(practitioner: Practitioner | None, act: str, actor: str,
              on: dt.date) -> None:
    """NOT_AUTHORIZED unless `actor` is registered, may do `act`, and is licensed on `on`."""
    if practitioner is None:
        raise Rejected(Code.NOT_AUTHORIZED, f"actor {actor!r} is not a registered practitioner",
                       "actor")
    if practitioner.role not in PERMISSIONS[act]:
        article = "an" if practitioner.role[:1] in "aeiou" else "a"
        raise Rejected(Code.NOT_AUTHORIZED,
                       f"{article} {practitioner.role} may not {act} (actor {actor!r})",
                       "actor")
    if practitioner.license_expires_on < on:
        raise Rejected(Code.NOT_AUTHORIZED,
                       f"the licence of {actor!r} expired on "
                       f"{practitioner.license_expires_on.isoformat()}", "actor")


def contraindications_from(screening: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Absolute and relative codes derived from screening answers."""
    absolute = [code for flag, code in ABSOLUTE.items() if screening[flag]]
    relative = [code for flag, code in RELATIVE.items() if screening[flag]]
    return absolute, relative


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


def spacing_rule(state: CourseState, session_no: int) -> SpacingRule:
    """The rule governing the gap between session `session_no - 1` and `session_no`."""
    protocol = state.protocol
    if state.in_maintenance:
        if state.adjusted is not None and state.adjusted_in_maintenance:
            return state.adjusted
        if protocol.maintenance is not None:
            return protocol.maintenance
    if state.adjusted is not None:
        return state.adjusted
    return protocol.rule_for(session_no)


def next_window(state: CourseState, zone: ZoneInfo) -> dict[str, Any] | None:
    """The next-session window, dates in the clinic zone (docs/reference.md)."""
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
    return {"session_no": n, "earliest": earliest, "target": target, "latest": latest,
            "planned_at": planned}


def blocked_by(state: CourseState, *, erased: bool) -> list[str]:
    """The codes a `give_session` now would meet for reasons of state, sorted."""
    if state.closed:
        return sorted(["COURSE_CLOSED"] + (["PATIENT_ERASED"] if erased else []))
    codes: list[str] = []
    if erased:
        codes.append("PATIENT_ERASED")
    if state.status == "paused":
        codes.append("COURSE_PAUSED")
    if state.consultation_at is None:
        codes.append("NO_CONSULTATION")
    elif state.consent is False:
        codes.append("NO_CONSENT")
    if [code for code in state.absolute if code not in state.overrides]:
        codes.append("CONTRAINDICATED")
    if state.pending_reviews():
        codes.append("REACTION_UNREVIEWED")
    if not state.in_maintenance and state.next_session_no > state.planned_sessions:
        codes.append("PLAN_EXCEEDED")
    return sorted(codes)


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
