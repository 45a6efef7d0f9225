"""A course as the engine shows it: `course show` and `course history` documents
(docs/reference.md, "Course" and "History entry")."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from coursebook.domain import rules
from coursebook.domain.course_state import CourseState
from coursebook.domain.values import ERASED, Personal

__all__ = ["course_document", "history_documents", "iso", "summarise"]


def iso(instant: dt.datetime | None) -> str | None:
    """Timestamps in outputs: ISO-8601 in UTC with a `Z`."""
    if instant is None:
        return None
    return instant.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _window(state: CourseState, zone: ZoneInfo) -> dict[str, Any] | None:
    window = rules.next_window(state, zone)
    if window is not None:
        window["planned_at"] = iso(window["planned_at"])
    return window


def follow_up(state: CourseState, zone: ZoneInfo) -> dict[str, Any] | None:
    """`{"session_no", "due", "latest", "done_at"}` of the follow-up the course's
    catalogue asks for (null without the parameter, or before that session is given)."""
    status = rules.follow_up_status(state, zone)
    if status is not None:
        status["done_at"] = iso(status["done_at"])
    return status


def _patient(personal: Personal | None, shredded: bool) -> Any:
    if personal is None:
        return None
    if shredded or personal.erased:
        return ERASED
    return personal.data


def course_document(state: CourseState, zone: ZoneInfo, *, erased: bool,
                    shredded: bool) -> dict[str, Any]:
    """`erased`: the erasure counts at the moment asked about (blocked_by);
    `shredded`: the patient's key is gone now, so personal data reads `[erased]`."""
    rule = rules.spacing_rule(state, max(2, state.next_session_no))
    last = state.last_session
    return {
        "course_id": state.course_id,
        "patient_ref": state.patient_ref,
        "indication": state.indication,
        "protocol": {"name": f"{state.protocol.catalogue}/{state.protocol.indication}",
                     "version": state.protocol.version},
        "status": state.status,
        "version": state.version,
        "planned_sessions": state.planned_sessions,
        "sessions_given": state.sessions_given,
        "last_session_at": iso(last.at) if last else None,
        "spacing": rule.as_dict(),
        "next": _window(state, zone),
        "contraindications": {
            "absolute": sorted(state.absolute),
            "relative": sorted(state.relative),
            "overridden": sorted(c for c in state.overrides if c in state.absolute),
        },
        "blocked_by": rules.blocked_by(state, erased=erased),
        "follow_up": follow_up(state, zone),
        "patient": _patient(state.patient, shredded),
    }


def summarise(event: Any) -> str:
    """One line about an event, with no personal data (notes and screening never appear)."""
    name = type(event).__name__
    match name:
        case "Opened":
            return (f"course opened for {event.indication} ({event.protocol.label}), "
                    f"{event.planned_sessions} sessions planned")
        case "ConsultationRecorded":
            codes = ", ".join([*event.absolute, *event.relative]) or "no contraindication"
            text = f"consultation: consent {'given' if event.consent else 'refused'}; {codes}"
            if event.from_medications:
                text += (f" ({', '.join(event.from_medications)} from the medication list, "
                         "not the tick-box)")
            return text
        case "ContraindicationOverridden":
            return f"{event.code} overridden: {event.justification}"
        case "SessionScheduled":
            return f"session {event.session_no} scheduled for {iso(event.planned_at)}"
        case "SessionRescheduled":
            return (f"session {event.session_no} rescheduled to {iso(event.planned_at)}: "
                    f"{event.reason}")
        case "SessionCancelled":
            return f"session {event.session_no} cancelled: {event.reason}"
        case "SessionGiven":
            text = f"session {event.session_no} given"
            if event.gap_days is not None:
                text += f", {event.gap_days} days after the previous one"
            if event.spacing_override_reason:
                text += f" (spacing override: {event.spacing_override_reason})"
            if event.aftercare is not None:
                text += f"; aftercare {event.aftercare}"
            return text
        case "FollowUpRecorded":
            outcome = "as expected" if event.outcome == "as_expected" else "concern"
            return f"follow-up of session {event.session_no}: {outcome}"
        case "ConsentWithdrawn":
            return "consent withdrawn" + (f": {event.reason}" if event.reason else "")
        case "ReactionReported":
            return (f"reaction to session {event.session_no}: {event.kind}, "
                    f"severity {event.severity}")
        case "ReactionReviewed":
            return f"reaction to session {event.session_no} reviewed: {event.decision}"
        case "IntervalAdjusted":
            r = event.rule
            return (f"interval adjusted to {r.min_days}/{r.target_days}/{r.max_days} days: "
                    f"{event.reason}")
        case "PlanExtended":
            return f"plan set to {event.planned_sessions} sessions: {event.reason}"
        case "Paused":
            return f"course paused: {event.reason}"
        case "Resumed":
            return "course resumed" + (f": {event.reason}" if event.reason else "")
        case "Completed":
            return "course completed" + (", maintenance follows" if event.maintenance else "")
        case "Discontinued":
            return f"course discontinued: {event.reason}"
    return name


def history_documents(events: list[Any], zone: ZoneInfo, *,
                      shredded: bool) -> list[dict[str, Any]]:
    """Every version, oldest first, with the next-session window before and after it."""
    documents: list[dict[str, Any]] = []
    state: CourseState | None = None
    after: dict[str, Any] | None = None
    for event in events:
        # The window before a version is the one after the previous version.
        before = None if after is None else dict(after)
        if state is None:
            state = CourseState.start(event)
        else:
            state.apply(event)
        after = _window(state, zone)
        documents.append({
            "version": state.version,
            "event": type(event).__name__,
            "at": iso(event.at),
            "recorded_at": iso(event.timestamp),
            "actor": event.actor,
            "summary": summarise(event),
            "next_before": before,
            "next_after": after,
        })
    return documents
