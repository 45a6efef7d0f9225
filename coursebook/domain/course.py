"""The `TreatmentCourse` aggregate: one patient's series of sessions for one indication.

Each public method checks the rules (via `rules`, which decides every refusal; the
aggregate raises the first in the contract's order) and then triggers exactly one event;
events only change state (via `CourseState`), so replaying them never re-decides anything.
Every event carries `at` (valid time), `actor` and `command_id`; the library's `timestamp`
is the recorded time, stamped from the application's injected clock.
"""

from __future__ import annotations

import datetime as dt
from copy import deepcopy
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs
from eventsourcing.domain import Aggregate

from coursebook.domain import rules, schema
from coursebook.domain.course_state import CourseState, GivenSession
from coursebook.domain.ids import course_uuid
from coursebook.domain.values import Personal, Product, Protocol, SpacingRule
from coursebook.errors import Code, Rejected

__all__ = ["Context", "TreatmentCourse"]


@attrs.frozen
class Context:
    """What a decision needs from outside the course: zone, clock, actor, erasure."""

    zone: ZoneInfo
    now: dt.datetime
    practitioner: rules.Practitioner | None = None
    erased: bool = False
    command_id: str = ""
    at: dt.datetime = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    actor: str = ""

    def local(self, instant: dt.datetime) -> dt.date:
        return rules.local_date(instant, self.zone)


class TreatmentCourse(Aggregate):
    """A course's events, and the rules that decide which new ones may be recorded."""

    class Opened(Aggregate.Created):
        class_version = 3  # 1: 0.1.0, values by position; 2: no catalogue (domain/schema.py)
        upcast_v1_v2 = staticmethod(schema.values_by_name)
        upcast_v2_v3 = staticmethod(schema.course_catalogue)

        at: dt.datetime
        actor: str
        command_id: str
        course_id: str
        patient_ref: str
        indication: str
        planned_sessions: int
        protocol: Protocol
        patient: Personal | None
        rules_version: str
        catalogue: dict[str, Any]
        """The catalogue in force when the course was opened: `{"name", "version",
        "digest"}`. Its protocol (`protocol`) and safety parameters (`safety`) travel
        with the course for life."""
        safety: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.state = CourseState.start(self)

    class Event(Aggregate.Event):
        class_version = 2  # every course event; 1: 0.1.0, values by position
        upcast_v1_v2 = staticmethod(schema.values_by_name)

        at: dt.datetime
        actor: str
        command_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.state.apply(self)

    class ConsultationRecorded(Event):
        class_version = 3  # 2: before catalogues (domain/schema.py)
        upcast_v2_v3 = staticmethod(schema.no_medication_codes)

        consent: bool
        absolute: list[str]
        relative: list[str]
        screening: Personal
        from_medications: list[str]
        """The codes among `relative` that only the medication list put in force (the
        course's catalogue's `blood_thinners`)."""

    class ContraindicationOverridden(Event):
        code: str
        justification: str
        consultation_no: int

    class SessionScheduled(Event):
        session_no: int
        planned_at: dt.datetime
        practitioner_id: str | None
        spacing_override_reason: str | None
        rule: SpacingRule | None
        gap_days: int | None

    class SessionRescheduled(Event):
        session_no: int
        planned_at: dt.datetime
        reason: str
        spacing_override_reason: str | None
        rule: SpacingRule | None
        gap_days: int | None

    class SessionCancelled(Event):
        session_no: int
        reason: str

    class SessionGiven(Event):
        class_version = 3  # 2: before `aftercare` (domain/schema.py)
        upcast_v2_v3 = staticmethod(schema.no_aftercare)

        session_no: int
        products: list[Product]
        areas: list[str]
        dose_ml: float
        anaesthetic: str | None
        spacing_override_reason: str | None
        maintenance: bool
        rule: SpacingRule | None
        gap_days: int | None
        cautions: list[str]
        overrides: list[dict[str, Any]]
        rules_version: str
        aftercare: str | None

    class ReactionReported(Event):
        session_no: int
        kind: str
        severity: int
        notes: Personal | None

    class ReactionReviewed(Event):
        session_no: int
        decision: str
        notes: Personal | None

    class FollowUpRecorded(Event):
        session_no: int
        outcome: str
        notes: Personal | None

    class ConsentWithdrawn(Event):
        reason: str | None

    class IntervalAdjusted(Event):
        rule: SpacingRule
        reason: str

    class PlanExtended(Event):
        planned_sessions: int
        reason: str

    class Paused(Event):
        reason: str

    class Resumed(Event):
        reason: str | None

    class Completed(Event):
        maintenance: bool

    class Discontinued(Event):
        reason: str

    if TYPE_CHECKING:  # set by the events' apply(); not constructor arguments
        state: CourseState

    def __deepcopy__(self, memo: dict[int, Any]) -> TreatmentCourse:
        """The copy a command works on (the library's cache hands out copies): the
        state copied as `CourseState.__deepcopy__` says, ids, versions and times (all
        immutable) shared, no pending events carried over."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        memo[id(self)] = clone
        clone.state = deepcopy(self.state, memo)
        clone._pending_events = [deepcopy(e, memo) for e in self._pending_events]
        return clone

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, ctx: Context, *, course_id: str, patient_ref: str, protocol: Protocol,
             planned_sessions: int | None, patient: dict[str, Any] | None,
             catalogue: dict[str, Any] | None = None,
             safety: dict[str, Any] | None = None) -> TreatmentCourse:
        """`catalogue` (`{"name", "version", "digest"}`) and `safety` (its parameters,
        by name): the catalogue in force, which `protocol` comes from."""
        planned = protocol.default_sessions if planned_sessions is None else planned_sessions
        if not protocol.min_planned_sessions <= planned <= protocol.max_planned_sessions:
            raise Rejected(Code.INVALID,
                           f"planned_sessions: must be {protocol.min_planned_sessions}.."
                           f"{protocol.max_planned_sessions} for {protocol.indication}",
                           "planned_sessions")
        return cls._create(
            cls.Opened, id=course_uuid(course_id), timestamp=ctx.now,
            at=ctx.at, actor=ctx.actor, command_id=ctx.command_id, course_id=course_id,
            patient_ref=patient_ref, indication=protocol.indication,
            planned_sessions=planned, protocol=protocol,
            patient=None if patient is None else Personal(patient_ref, patient),
            rules_version=rules.RULES_VERSION,
            catalogue=dict(schema.DEFAULT_1) if catalogue is None else dict(catalogue),
            safety=dict(safety or {}))

    # -- shared guards -----------------------------------------------------------------
    def _record(self, event_class: type[Event], ctx: Context, **fields: Any) -> None:
        self.trigger_event(event_class, timestamp=ctx.now, at=ctx.at, actor=ctx.actor,
                           command_id=ctx.command_id, **fields)

    @staticmethod
    def _refuse(*refusals: rules.Refusal | None) -> None:
        """Raises the refusal the contract checks first among `refusals`, if any."""
        refusal = rules.first_refusal(refusals)
        if refusal is not None:
            raise refusal.rejected()

    def _guard(self, ctx: Context, act: str, *, fact: bool = False,
               closed_ok: bool = False) -> None:
        """The checks every course command meets, in the contract's order."""
        self._refuse(rules.future_fact(ctx.at, ctx.now) if fact else None,
                     rules.patient_erased(ctx.erased),
                     None if closed_ok else rules.course_closed(self.state),
                     rules.not_authorized(ctx.practitioner, act, ctx.actor, ctx.local(ctx.at)))

    def _book(self, ctx: Context, session_no: int, planned_at: dt.datetime,
              override_reason: str | None) -> rules.SpacingDecision:
        """The checks of scheduling or rescheduling session `session_no` at `planned_at`;
        the spacing decision to record when they pass."""
        self._refuse(*rules.session_refusals(self.state, erased=ctx.erased,
                                             session_no=session_no, booking=True),
                     rules.not_authorized(ctx.practitioner, "schedule", ctx.actor,
                                          ctx.local(ctx.at)))
        spacing = rules.spacing_decision(self.state, session_no, planned_at, ctx.zone,
                                         override_reason)
        self._refuse(spacing.refusal)
        return spacing

    def _next_only(self, session_no: int | None) -> int:
        expected = self.state.next_session_no
        if session_no is not None and session_no != expected:
            raise Rejected(Code.INVALID, f"session_no: must be the next session, {expected}",
                           "session_no")
        return expected

    # -- commands ----------------------------------------------------------------------
    def record_consultation(self, ctx: Context, *, consent: bool,
                            screening: dict[str, Any]) -> None:
        self._guard(ctx, "consult", fact=True)
        absolute, relative, from_medications = rules.contraindications_from(
            screening, self.state.safety)
        self._record(self.ConsultationRecorded, ctx, consent=consent, absolute=absolute,
                     relative=relative, screening=Personal(self.state.patient_ref, screening),
                     from_medications=from_medications)

    def override_contraindication(self, ctx: Context, *, code: str, justification: str) -> None:
        if code not in self.state.absolute:
            raise Rejected(Code.INVALID,
                           "code: not an absolute contraindication in force", "code")
        if code in self.state.overrides:
            raise Rejected(Code.INVALID, "code: already overridden under this consultation",
                           "code")
        self._guard(ctx, "override")
        self._record(self.ContraindicationOverridden, ctx, code=code,
                     justification=justification,
                     consultation_no=self.state.consultation_no)

    def schedule_session(self, ctx: Context, *, planned_at: dt.datetime,
                         session_no: int | None = None, practitioner_id: str | None = None,
                         spacing_override_reason: str | None = None) -> None:
        n = self._next_only(session_no)
        if self.state.scheduled is not None and self.state.scheduled.session_no == n:
            raise Rejected(Code.INVALID, f"session_no: session {n} is already scheduled; "
                           "use reschedule_session", "session_no")
        spacing = self._book(ctx, n, planned_at, spacing_override_reason)
        self._record(self.SessionScheduled, ctx, session_no=n, planned_at=planned_at,
                     practitioner_id=practitioner_id,
                     spacing_override_reason=spacing_override_reason, rule=spacing.rule,
                     gap_days=spacing.gap_days)

    def _require_scheduled(self, session_no: int) -> None:
        scheduled = self.state.scheduled
        if scheduled is None or scheduled.session_no != session_no:
            raise Rejected(Code.NOT_FOUND, f"session {session_no} is not scheduled",
                           "session_no")

    def reschedule_session(self, ctx: Context, *, session_no: int, planned_at: dt.datetime,
                           reason: str, spacing_override_reason: str | None = None) -> None:
        self._require_scheduled(session_no)
        spacing = self._book(ctx, session_no, planned_at, spacing_override_reason)
        self._record(self.SessionRescheduled, ctx, session_no=session_no,
                     planned_at=planned_at, reason=reason,
                     spacing_override_reason=spacing_override_reason, rule=spacing.rule,
                     gap_days=spacing.gap_days)

    def cancel_session(self, ctx: Context, *, session_no: int, reason: str) -> None:
        self._require_scheduled(session_no)
        self._guard(ctx, "schedule")
        self._record(self.SessionCancelled, ctx, session_no=session_no, reason=reason)

    def give_session(self, ctx: Context, *, products: list[Product], areas: list[str],
                     dose_ml: float, anaesthetic: str | None, session_no: int | None = None,
                     spacing_override_reason: str | None = None,
                     aftercare: str | None = None) -> None:
        n = self._next_only(session_no)
        state, day = self.state, ctx.local(ctx.at)
        self._refuse(rules.future_fact(ctx.at, ctx.now),
                     *rules.session_refusals(state, erased=ctx.erased, session_no=n),
                     rules.screening_stale(state, day, ctx.zone),
                     rules.not_authorized(ctx.practitioner, "inject", ctx.actor, day),
                     rules.allergen(state.allergies, products, anaesthetic),
                     rules.lot_expired(products, day))
        spacing = rules.spacing_decision(state, n, ctx.at, ctx.zone, spacing_override_reason)
        self._refuse(rules.out_of_order(state, ctx.at), spacing.refusal)
        overrides = [{"code": o.code, "justification": o.justification, "by": o.by,
                      "at": o.at.isoformat()}
                     for code, o in sorted(state.overrides.items()) if code in state.absolute]
        self._record(self.SessionGiven, ctx, session_no=n, products=list(products),
                     areas=list(areas), dose_ml=dose_ml, anaesthetic=anaesthetic,
                     spacing_override_reason=spacing_override_reason,
                     maintenance=state.in_maintenance, rule=spacing.rule,
                     gap_days=spacing.gap_days,
                     cautions=list(state.relative), overrides=overrides,
                     rules_version=rules.RULES_VERSION, aftercare=aftercare)

    def _given(self, session_no: int) -> GivenSession:
        session = self.state.session(session_no)
        if session is None:
            raise Rejected(Code.NOT_FOUND, f"session {session_no} has not been given",
                           "session_no")
        return session

    def report_reaction(self, ctx: Context, *, session_no: int, kind: str, severity: int,
                        notes: str | None = None) -> None:
        session = self._given(session_no)
        self._guard(ctx, "report", fact=True, closed_ok=True)
        if ctx.at < session.at:
            raise Rejected(Code.OUT_OF_ORDER, f"at: before session {session_no} was given",
                           "at")
        self._record(self.ReactionReported, ctx, session_no=session_no, kind=kind,
                     severity=severity, notes=self._personal_notes(notes))

    def review_reaction(self, ctx: Context, *, session_no: int, decision: str,
                        notes: str | None = None) -> None:
        pending = self.state.pending_reviews(session_no)
        if not pending:
            raise Rejected(Code.NOT_FOUND, f"session {session_no} has no reaction of severity "
                           "3 or more (or of a serious kind) awaiting review", "session_no")
        self._guard(ctx, "review", fact=True, closed_ok=True)
        if ctx.at < max(r.at for r in pending):
            raise Rejected(Code.OUT_OF_ORDER, "at: before the reaction it reviews", "at")
        self._record(self.ReactionReviewed, ctx, session_no=session_no, decision=decision,
                     notes=self._personal_notes(notes))

    def record_follow_up(self, ctx: Context, *, session_no: int, outcome: str,
                         notes: str | None = None) -> None:
        session = self._given(session_no)
        self._guard(ctx, "follow_up", fact=True, closed_ok=True)
        if ctx.at < session.at:
            raise Rejected(Code.OUT_OF_ORDER, f"at: before session {session_no} was given",
                           "at")
        self._record(self.FollowUpRecorded, ctx, session_no=session_no, outcome=outcome,
                     notes=self._personal_notes(notes))

    def withdraw_consent(self, ctx: Context, *, reason: str | None = None) -> None:
        self._guard(ctx, "withdraw", fact=True, closed_ok=True)
        self._record(self.ConsentWithdrawn, ctx, reason=reason)

    def _personal_notes(self, notes: str | None) -> Personal | None:
        return None if notes is None else Personal(self.state.patient_ref, {"notes": notes})

    def adjust_interval(self, ctx: Context, *, min_days: int, target_days: int, max_days: int,
                        reason: str) -> None:
        self._guard(ctx, "adjust")
        self._refuse(rules.below_protocol_adjustment(self.state, min_days, ctx.practitioner,
                                                     ctx.actor))
        source = f"adjust_interval {ctx.command_id} ({ctx.local(ctx.at).isoformat()})"
        rule = SpacingRule(min_days, target_days, max_days, source=source)
        self._record(self.IntervalAdjusted, ctx, rule=rule, reason=reason)

    def extend_plan(self, ctx: Context, *, planned_sessions: int, reason: str) -> None:
        given, ceiling = self.state.sessions_given, self.state.protocol.max_extended_sessions
        if not given < planned_sessions <= ceiling:
            raise Rejected(Code.INVALID, f"planned_sessions: must be above the {given} "
                           f"session(s) given and at most {ceiling}", "planned_sessions")
        self._guard(ctx, "extend")
        self._record(self.PlanExtended, ctx, planned_sessions=planned_sessions, reason=reason)

    def pause_course(self, ctx: Context, *, reason: str) -> None:
        if self.state.status == "paused":
            raise Rejected(Code.INVALID, "the course is already paused")
        self._guard(ctx, "pause")
        self._record(self.Paused, ctx, reason=reason)

    def resume_course(self, ctx: Context, *, reason: str | None = None) -> None:
        if self.state.status != "paused":
            raise Rejected(Code.INVALID, "the course is not paused")
        self._guard(ctx, "resume")
        self._record(self.Resumed, ctx, reason=reason)

    def complete_course(self, ctx: Context) -> None:
        if self.state.status != "active":
            raise Rejected(Code.INVALID, f"only an active course can be completed (it is "
                           f"{self.state.status})")
        if self.state.sessions_given == 0:
            raise Rejected(Code.INVALID, "no session has been given")
        self._guard(ctx, "complete")
        self._record(self.Completed, ctx,
                     maintenance=self.state.protocol.maintenance is not None)

    def discontinue_course(self, ctx: Context, *, reason: str) -> None:
        self._guard(ctx, "discontinue")
        self._record(self.Discontinued, ctx, reason=reason)


