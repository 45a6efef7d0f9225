"""The state of a treatment course as a pure fold over its events.

The aggregate keeps one `CourseState` and applies each event to it; time-travel queries
(`--as-of`, `--known-at`, `--version`) fold the same function over a filtered list of the
stored events. One fold, so the live course and any replay can never disagree.
Applying an event never checks rules, reads the clock or calls out.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import attrs

from coursebook.domain.protocols import Catalogue, Safety
from coursebook.domain.values import Personal, Product, Protocol, SpacingRule

__all__ = ["CLOSED", "Adjustment", "Consultation", "CourseState", "FollowUp", "GivenSession",
           "Override", "Reaction", "Scheduled"]

CLOSED = frozenset({"completed", "discontinued"})


@attrs.frozen
class Override:
    def __deepcopy__(self, memo: dict[int, Any]) -> Override:
        """Immutable all the way down: a copy of an aggregate may share it."""
        return self

    code: str
    justification: str
    by: str
    at: dt.datetime


@attrs.frozen
class Scheduled:
    def __deepcopy__(self, memo: dict[int, Any]) -> Scheduled:
        """Immutable all the way down: a copy of an aggregate may share it."""
        return self

    session_no: int
    planned_at: dt.datetime
    practitioner_id: str | None


@attrs.frozen
class Adjustment:
    """An `adjust_interval` as recorded: its rule, who made it and why."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Adjustment:
        """Immutable all the way down: a copy of an aggregate may share it."""
        return self

    rule: SpacingRule
    by: str
    reason: str
    at: dt.datetime


@attrs.frozen
class Consultation:
    """What the rules keep of a consultation (never its answers: those are personal)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Consultation:
        """Immutable all the way down: a copy of an aggregate may share it."""
        return self

    at: dt.datetime
    actor: str
    from_medications: tuple[str, ...]
    """The codes put in force only by the medication list (`blood_thinners`)."""


@attrs.frozen
class FollowUp:
    def __deepcopy__(self, memo: dict[int, Any]) -> FollowUp:
        """Immutable all the way down: a copy of an aggregate may share it."""
        return self

    session_no: int
    at: dt.datetime
    actor: str
    outcome: str


@attrs.frozen
class GivenSession:
    """A session as given, with the decision that allowed it."""

    def __deepcopy__(self, memo: dict[int, Any]) -> GivenSession:
        """Immutable all the way down: a copy of an aggregate may share it."""
        return self

    session_no: int
    at: dt.datetime
    actor: str
    products: tuple[Product, ...]
    maintenance: bool
    rule: SpacingRule | None
    gap_days: int | None
    spacing_override_reason: str | None
    cautions: tuple[str, ...]
    overrides: tuple[Override, ...]
    aftercare: str | None = None
    protocol_rule: SpacingRule | None = None
    """The protocol's own rule for this session (its phase, or maintenance): what an
    adjustment is measured against (`rules.interval_below_protocol`)."""
    adjustment: Adjustment | None = None
    """The `adjust_interval` whose rule governed this session, if one did."""


@attrs.define
class Reaction:
    session_no: int
    kind: str
    severity: int
    at: dt.datetime
    actor: str
    reviewed_at: dt.datetime | None = None
    reviewed_by: str | None = None
    decision: str | None = None
    serious_kind: bool = False
    """Its kind is one of the catalogue's `serious_reaction_kinds`."""

    @property
    def severe(self) -> bool:
        """Severity 3 or more, or a serious kind whatever its severity: reviewed by a
        physician before the next session."""
        return self.severity >= 3 or self.serious_kind

    @property
    def awaiting_review(self) -> bool:
        return self.severe and self.reviewed_at is None


@attrs.define
class CourseState:
    course_id: str
    patient_ref: str
    indication: str
    protocol: Protocol
    planned_sessions: int
    opened_at: dt.datetime
    catalogue: dict[str, Any] = attrs.field(factory=dict)
    """The catalogue the course was opened under: `{"name", "version", "digest"}`."""
    safety: Safety = attrs.field(factory=Safety)
    patient: Personal | None = None
    status: str = "open"
    status_before_pause: str | None = None
    version: int = 0
    consultation_at: dt.datetime | None = None
    consultation_no: int = 0
    consent: bool | None = None
    consent_withdrawn: bool = False
    consultations: list[Consultation] = attrs.field(factory=list)
    absolute: tuple[str, ...] = ()
    relative: tuple[str, ...] = ()
    overrides: dict[str, Override] = attrs.field(factory=dict)
    screening: Personal | None = None
    sessions: list[GivenSession] = attrs.field(factory=list)
    in_maintenance: bool = False
    adjusted: SpacingRule | None = None
    adjusted_in_maintenance: bool = False
    adjustment: Adjustment | None = None
    follow_ups: list[FollowUp] = attrs.field(factory=list)
    scheduled: Scheduled | None = None
    reactions: list[Reaction] = attrs.field(factory=list)
    latest_at: dt.datetime | None = None
    """The latest valid time (`at`) among the events folded: a snapshot of this state
    answers `--as-of T` only if `latest_at <= T` (events may be back-dated)."""

    # -- derived -----------------------------------------------------------------------
    @property
    def sessions_given(self) -> int:
        return len(self.sessions)

    @property
    def next_session_no(self) -> int:
        return len(self.sessions) + 1

    @property
    def last_session(self) -> GivenSession | None:
        return self.sessions[-1] if self.sessions else None

    @property
    def closed(self) -> bool:
        return self.status in CLOSED

    @property
    def allergies(self) -> list[str]:
        if self.screening is None or self.screening.data is None:
            return []
        return list(self.screening.data.get("allergies", []))

    def session(self, session_no: int) -> GivenSession | None:
        if 1 <= session_no <= len(self.sessions):
            return self.sessions[session_no - 1]
        return None

    def pending_reviews(self, session_no: int | None = None) -> list[Reaction]:
        return [r for r in self.reactions if r.awaiting_review
                and (session_no is None or r.session_no == session_no)]

    def __deepcopy__(self, memo: dict[int, Any]) -> CourseState:
        """A copy a command may change while the cached course stays as it was.

        Only what the fold mutates is copied (the containers, and each `Reaction`, which
        a review updates in place); their other items are immutable and shared. The
        generic `deepcopy` walked every session, product and date: about a sixth of a
        command's CPU time, and linear in the course's length."""
        clone = copy.copy(self)
        clone.overrides = dict(self.overrides)
        clone.sessions = list(self.sessions)
        clone.catalogue = dict(self.catalogue)
        clone.consultations = list(self.consultations)
        clone.follow_ups = list(self.follow_ups)
        clone.reactions = [copy.copy(reaction) for reaction in self.reactions]
        memo[id(self)] = clone
        return clone

    # -- the fold ----------------------------------------------------------------------
    @classmethod
    def start(cls, event: Any, under: Catalogue | None = None) -> CourseState:
        """The state of a course just opened; `under` a catalogue, the course is judged
        as though it had been opened under that one (its protocol for the course's
        indication, if it has one, and its safety parameters)."""
        protocol, catalogue = event.protocol, dict(event.catalogue)
        safety = Safety.from_dict(event.safety)
        if under is not None and under.get(event.indication) is not None:
            protocol, catalogue, safety = (under.protocols[event.indication],
                                           under.identity(), under.safety)
        state = cls(course_id=event.course_id, patient_ref=event.patient_ref,
                    indication=event.indication, protocol=protocol,
                    planned_sessions=event.planned_sessions, opened_at=event.at,
                    catalogue=catalogue, safety=safety,
                    patient=event.patient, latest_at=event.at)
        state.version = 1
        return state

    @classmethod
    def fold(cls, events: list[Any], under: Catalogue | None = None) -> CourseState | None:
        """The state after `events` (in recording order); None when they hold no opening.
        `under`: judge the same facts under that catalogue (see `start`)."""
        state: CourseState | None = None
        for event in events:
            if state is None:
                if type(event).__name__ == "Opened":
                    state = cls.start(event, under)
                continue
            state.apply(event)
        return state

    def apply(self, event: Any) -> None:
        getattr(self, "_on_" + type(event).__name__)(event)
        self.version += 1
        if self.latest_at is None or event.at > self.latest_at:
            self.latest_at = event.at

    def _on_ConsultationRecorded(self, e: Any) -> None:
        self.consultation_at = e.at
        self.consultation_no += 1
        self.consent = e.consent
        self.consent_withdrawn = False
        self.consultations.append(Consultation(e.at, e.actor, tuple(e.from_medications)))
        self.absolute = tuple(e.absolute)
        self.relative = tuple(e.relative)
        self.overrides = {}
        self.screening = e.screening
        if self.status == "open":
            self.status = "active"
        elif self.status == "paused" and self.status_before_pause == "open":
            self.status_before_pause = "active"

    def _on_ContraindicationOverridden(self, e: Any) -> None:
        self.overrides[e.code] = Override(e.code, e.justification, e.actor, e.at)

    def _on_SessionScheduled(self, e: Any) -> None:
        self.scheduled = Scheduled(e.session_no, e.planned_at, e.practitioner_id)

    def _on_SessionRescheduled(self, e: Any) -> None:
        practitioner = self.scheduled.practitioner_id if self.scheduled else None
        self.scheduled = Scheduled(e.session_no, e.planned_at, practitioner)

    def _on_SessionCancelled(self, e: Any) -> None:
        self.scheduled = None

    def _on_SessionGiven(self, e: Any) -> None:
        maintenance_rule = self.protocol.maintenance if e.maintenance else None
        adjustment = self.adjustment
        if adjustment is not None and (e.rule is None or e.rule != adjustment.rule):
            adjustment = None
        self.sessions.append(GivenSession(
            session_no=e.session_no, at=e.at, actor=e.actor, products=tuple(e.products),
            maintenance=e.maintenance, rule=e.rule, gap_days=e.gap_days,
            spacing_override_reason=e.spacing_override_reason,
            cautions=tuple(e.cautions),
            overrides=tuple(Override(o["code"], o["justification"], o["by"],
                                     _as_datetime(o["at"])) for o in e.overrides),
            aftercare=e.aftercare,
            protocol_rule=maintenance_rule or self.protocol.rule_for(e.session_no),
            adjustment=adjustment))
        if self.scheduled is not None and self.scheduled.session_no <= e.session_no:
            self.scheduled = None

    def _on_ReactionReported(self, e: Any) -> None:
        self.reactions.append(Reaction(
            e.session_no, e.kind, e.severity, e.at, e.actor,
            serious_kind=e.kind in self.safety.serious_reaction_kinds))

    def _on_ReactionReviewed(self, e: Any) -> None:
        for reaction in self.pending_reviews(e.session_no):
            reaction.reviewed_at = e.at
            reaction.reviewed_by = e.actor
            reaction.decision = e.decision
        if e.decision == "discontinue":
            self.status = "discontinued"
            self.scheduled = None

    def _on_IntervalAdjusted(self, e: Any) -> None:
        self.adjusted = e.rule
        self.adjusted_in_maintenance = self.in_maintenance
        self.adjustment = Adjustment(e.rule, e.actor, e.reason, e.at)

    def _on_FollowUpRecorded(self, e: Any) -> None:
        self.follow_ups.append(FollowUp(e.session_no, e.at, e.actor, e.outcome))

    def _on_ConsentWithdrawn(self, e: Any) -> None:
        self.consent = False
        self.consent_withdrawn = True

    def _on_PlanExtended(self, e: Any) -> None:
        self.planned_sessions = e.planned_sessions

    def _on_Paused(self, e: Any) -> None:
        self.status_before_pause = self.status
        self.status = "paused"

    def _on_Resumed(self, e: Any) -> None:
        self.status = self.status_before_pause or "active"
        self.status_before_pause = None

    def _on_Completed(self, e: Any) -> None:
        if e.maintenance:
            self.in_maintenance = True
            self.status = "maintenance"
        else:
            self.status = "completed"
            self.scheduled = None

    def _on_Discontinued(self, e: Any) -> None:
        self.status = "discontinued"
        self.scheduled = None


def _as_datetime(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
