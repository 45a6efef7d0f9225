"""The compliance report (docs/reference.md, "Compliance report"), from the stored events.

Two layers, so the judgement can be tested with time as data:

- `judge(courses, practitioners, as_of=, zone=, erased=)` is pure: it reads folded
  `CourseState`s and practitioners and returns the findings as they stood at `as_of`,
  through each course's `Contribution` (its findings, the time-dependent ones with the
  moment from which they hold), which the compliance view stores per course.
- `build_report(events, as_of=, known_at=, zone=)` is pure too: it selects the events a
  time-travel question sees (`domain.selection.select_events`: valid time `at <= as_of`,
  recorded time `timestamp <= known_at`), folds them in recording order, and judges.
- `Coursebook.compliance_report(...)` is the I/O: it reads the application log in
  recording order (only `report_topics()`) and hands the events to `build_report`.

The live report ("as of now") and any replay (`--as-of T --known-at T`) run the same code
over the same stored events, so they can never disagree. Findings carry codes, actors,
reasons, rule sources and dates, never personal data (patient, screening, notes).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import attrs
from eventsourcing.domain import DomainEvent

from coursebook.domain import rules
from coursebook.domain.course import TreatmentCourse
from coursebook.domain.course_state import CourseState, Reaction
from coursebook.domain.ids import patient_uuid
from coursebook.domain.patient import PatientRecord
from coursebook.domain.practitioner import PractitionerRecord
from coursebook.domain.protocols import Catalogue
from coursebook.domain.selection import select_events
from coursebook.domain.topics import topics_of
from coursebook.projections.collector import collector_paused
from coursebook.projections.course_view import iso

__all__ = [
    "CODES", "LICENSE_HORIZON_DAYS", "MEANING", "REVIEW_WINDOW", "SEVERITY", "Contribution",
    "Finding", "Report", "build_report", "contribution", "fold_practitioner", "fold_under",
    "judge", "judge_contributions",
    "report_topics",
    "what_if_report",
]

SEVERITY: dict[str, str] = {
    "SPACING_OVERRIDDEN": "warning",
    "SPACING_EXCEEDED": "warning",
    "OVERDUE": "warning",
    "CONTRAINDICATION_OVERRIDDEN": "warning",
    "GIVEN_WITH_CAUTIONS": "info",
    "SEVERE_REACTION": "warning",
    "REACTION_UNREVIEWED": "violation",
    "LICENSE_EXPIRING": "info",
    "INTERVAL_BELOW_PROTOCOL": "warning",
    "SCREENING_INCONSISTENT": "warning",
    "FOLLOW_UP_MISSED": "warning",
    "AFTERCARE_NOT_RECORDED": "info",
}
"""Every finding code and its severity."""

CODES = tuple(SEVERITY)
_ORDER = {code: n for n, code in enumerate(CODES)}  # CODES.index, looked up once

MEANING: dict[str, str] = {
    "SPACING_OVERRIDDEN": "a session came sooner than its spacing rule allows, with a "
                          "stated reason",
    "SPACING_EXCEEDED": "a session came later than its spacing rule's longest gap",
    "OVERDUE": "the next session's window has closed and it was not given",
    "CONTRAINDICATION_OVERRIDDEN": "a session was given while a physician had set aside "
                                   "an absolute contraindication",
    "GIVEN_WITH_CAUTIONS": "a session was given while relative contraindications were in "
                           "force",
    "SEVERE_REACTION": "a reaction of severity 3 or more, or of a kind the course's "
                       "catalogue lists as serious",
    "REACTION_UNREVIEWED": "such a reaction was not reviewed by a physician within 48 "
                           "hours",
    "LICENSE_EXPIRING": "a practitioner's licence ends within 30 days",
    "INTERVAL_BELOW_PROTOCOL": "a session came under an adjusted spacing whose minimum is "
                               "shorter than the protocol's",
    "SCREENING_INCONSISTENT": "the medication list names a blood thinner while the "
                              "anticoagulants answer was no",
    "FOLLOW_UP_MISSED": "the follow-up after a session was not recorded by its last "
                        "allowed day",
    "AFTERCARE_NOT_RECORDED": "a session was given without recording the aftercare "
                              "instructions handed out",
}
"""Each code in words (the compliance page explains every code it counts)."""
SEVERITIES = ("violation", "warning", "info")

REVIEW_WINDOW = dt.timedelta(hours=48)
"""A reaction of severity 3 or more must be reviewed within this long after its `at`."""

LICENSE_HORIZON_DAYS = 30
"""Licences expiring 0..30 days after the as-of local date (inclusive) are listed."""

PAGE_SIZE = 2000
"""Notifications read from the log per query."""


@attrs.frozen(hash=False)
class Finding:
    """One item of the report. `at` is a datetime here; documents show it in UTC `Z`."""

    code: str
    course_id: str | None
    session_no: int | None
    at: dt.datetime
    detail: dict[str, Any]

    @property
    def severity(self) -> str:
        return SEVERITY[self.code]

    def sort_key(self) -> tuple[Any, ...]:
        """By `at`, then `course_id` (the reference); then session, code and subject, so the
        order is total and two runs over the same events print the same report."""
        return (self.at, self.course_id or "", self.session_no or 0, _ORDER[self.code],
                str(self.detail.get("practitioner_id", "")))

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "course_id": self.course_id,
                "session_no": self.session_no, "at": iso(self.at), "detail": self.detail}


@attrs.frozen(hash=False)
class Report:
    """The report with what it was computed from (the HTML page draws the courses)."""

    as_of: dt.datetime
    known_at: dt.datetime | None
    zone: ZoneInfo
    courses: Mapping[str, CourseState]
    """Every course the question sees. A report of now answered from the compliance view
    folds a course from the log only when it is looked up (the page draws those with
    findings); its length is known without."""
    practitioners: dict[str, rules.Practitioner]
    erased: frozenset[str]
    findings: list[Finding]
    what_if: dict[str, Any] | None = None
    """For a what-if report: `{"catalogue", "added", "removed", "not_covered"}`."""

    def document(self) -> dict[str, Any]:
        """The JSON document: `{"as_of", "courses", "findings"}` (built with the cyclic
        collector paused: it would walk every course state kept here, again and again)."""
        with collector_paused():
            document: dict[str, Any] = {
                "as_of": iso(self.as_of), "courses": len(self.courses),
                "findings": [finding.as_dict() for finding in self.findings]}
            if self.what_if is not None:
                document["what_if"] = self.what_if
            return document

    def counts(self) -> list[tuple[str, str, int]]:
        """(code, severity, count) for every code found, most severe first."""
        counted = Counter(finding.code for finding in self.findings)
        return sorted(((code, SEVERITY[code], n) for code, n in counted.items()),
                      key=lambda row: (SEVERITIES.index(row[1]), CODES.index(row[0])))

    def html(self) -> str:
        """The self-contained HTML page of this report (no personal data)."""
        from coursebook.projections.compliance_html import render_html  # jinja2, on use

        return render_html(self)

    def findings_of(self, course_id: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.course_id == course_id]


# -- the pure judgement ------------------------------------------------------------------
def judge(courses: Iterable[CourseState], practitioners: Iterable[rules.Practitioner], *,
          as_of: dt.datetime, zone: ZoneInfo, erased: Collection[str] = ()) -> list[Finding]:
    """Every finding as it stood at `as_of`, ordered by `at` then `course_id`.

    `courses` are folded from the events the question sees; `erased` holds the
    `patient_ref`s erased by then (their courses are never OVERDUE). Each course is
    judged through its `Contribution`, as the compliance view keeps it.
    """
    return judge_contributions(
        ((contribution(state, zone), state.patient_ref in erased) for state in courses),
        practitioners, as_of=as_of, zone=zone)


def judge_contributions(contributions: Iterable[tuple[Contribution, bool]],
                        practitioners: Iterable[rules.Practitioner], *,
                        as_of: dt.datetime, zone: ZoneInfo) -> list[Finding]:
    """`judge` from each course's contribution and whether its patient was erased by
    `as_of`, plus the practitioners' findings; ordered by `Finding.sort_key`."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    findings: list[Finding] = []
    today = rules.local_date(as_of, zone)
    for made, erased in contributions:
        findings.extend(made.findings(as_of, today, erased=erased))
    findings.extend(_licence_findings(practitioners, as_of, zone))
    findings.sort(key=Finding.sort_key)
    return findings


@attrs.frozen(hash=False)
class Contribution:
    """What one course contributes to the report, judged under its own catalogue from
    the events folded: the findings that hold at any later moment (`settled`), and those
    that begin to hold at a moment: each REACTION_UNREVIEWED once its deadline (its
    `at`) is at or before the as-of moment, OVERDUE and FOLLOW_UP_MISSED once the as-of
    local date is past the last allowed day (`detail["latest"]`), never for an erased
    patient's course. The compliance view stores it per course (`as_json`), so the
    report as of now only evaluates those moments."""

    settled: tuple[Finding, ...] = ()
    unreviewed: tuple[Finding, ...] = ()
    overdue: Finding | None = None
    """`detail["days_overdue"]` is None here: it counts from the as-of date."""
    missed: Finding | None = None

    def findings(self, as_of: dt.datetime, today: dt.date, *,
                 erased: bool) -> Iterator[Finding]:
        """The findings as they stood at `as_of` (`today`: its local date)."""
        yield from self.settled
        for finding in self.unreviewed:
            if finding.at <= as_of:
                yield finding
        if erased:
            return
        overdue = self.overdue
        if overdue is not None:
            latest = dt.date.fromisoformat(overdue.detail["latest"])
            if latest < today:
                yield Finding(overdue.code, overdue.course_id, overdue.session_no, overdue.at,
                              {**overdue.detail, "days_overdue": (today - latest).days})
        missed = self.missed
        if missed is not None and today > dt.date.fromisoformat(missed.detail["latest"]):
            yield missed

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready form (`from_json` reads it back to an equal contribution)."""
        def plain(finding: Finding | None) -> list[Any] | None:
            return None if finding is None else [finding.code, finding.course_id,
                                                 finding.session_no, iso(finding.at),
                                                 finding.detail]
        return {"settled": [plain(f) for f in self.settled],
                "unreviewed": [plain(f) for f in self.unreviewed],
                "overdue": plain(self.overdue), "missed": plain(self.missed)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Contribution:
        instant = dt.datetime.fromisoformat

        def one(item: list[Any] | None) -> Finding | None:
            if item is None:
                return None
            code, course_id, session_no, at, detail = item
            return Finding(code, course_id, session_no, instant(at), detail)

        return cls(tuple([Finding(code, course_id, session_no, instant(at), detail)
                          for code, course_id, session_no, at, detail in data["settled"]]),
                   tuple([Finding(code, course_id, session_no, instant(at), detail)
                          for code, course_id, session_no, at, detail in data["unreviewed"]]),
                   one(data["overdue"]), one(data["missed"]))


def contribution(state: CourseState, zone: ZoneInfo) -> Contribution:
    """What `state` contributes to the report at any moment (see `Contribution`)."""
    settled = [*_session_findings(state)]
    unreviewed: list[Finding] = []
    for finding in _reaction_findings(state):
        (unreviewed if finding.code == "REACTION_UNREVIEWED" else settled).append(finding)
    settled.extend(_safety_findings(state))
    return Contribution(tuple(settled), tuple(unreviewed), _overdue(state, zone),
                        _follow_up_missed(state, zone))


def _protocol(state: CourseState) -> dict[str, Any]:
    return {"name": f"{state.protocol.catalogue}/{state.protocol.indication}",
            "version": state.protocol.version}


def _session_findings(state: CourseState) -> Iterator[Finding]:
    """SPACING_OVERRIDDEN, SPACING_EXCEEDED, CONTRAINDICATION_OVERRIDDEN and
    GIVEN_WITH_CAUTIONS, judged by `rules.judge_session` from the decision recorded with
    each session (never re-decided with today's rules)."""
    for session in state.sessions:
        for code, facts in rules.judge_session(session):
            detail = {**facts, "given_by": session.actor, "maintenance": session.maintenance,
                      "protocol": _protocol(state)}
            if code == "CONTRAINDICATION_OVERRIDDEN":
                detail["overridden_at"] = [iso(o.at) for o in session.overrides]
            yield Finding(code, state.course_id, session.session_no, session.at, detail)


def _decided_by(state: CourseState, parameter: str) -> dict[str, Any]:
    """The catalogue parameter behind a finding, and the catalogue that set it."""
    return {"parameter": parameter,
            "catalogue": {key: state.catalogue.get(key) for key in ("name", "version")}}


def _safety_findings(state: CourseState) -> Iterator[Finding]:
    """INTERVAL_BELOW_PROTOCOL and AFTERCARE_NOT_RECORDED for each session, and
    SCREENING_INCONSISTENT for each consultation, under the course's catalogue's safety
    parameters (`rules`). Never a screening answer in a detail."""
    safety = state.safety
    for session in state.sessions:
        below = rules.interval_below_protocol(session, safety)
        if below is not None:
            yield Finding("INTERVAL_BELOW_PROTOCOL", state.course_id, session.session_no,
                          session.at, {**below, "given_by": session.actor,
                                       **_decided_by(state,
                                                     "below_protocol_min_needs_physician")})
        if rules.aftercare_missing(session, safety):
            yield Finding("AFTERCARE_NOT_RECORDED", state.course_id, session.session_no,
                          session.at, {"given_by": session.actor,
                                       **_decided_by(state, "aftercare_required")})
    if safety.blood_thinners:
        for consultation in state.consultations:
            inconsistent = rules.screening_inconsistent(consultation.from_medications)
            if inconsistent is not None:
                yield Finding("SCREENING_INCONSISTENT", state.course_id, None,
                              consultation.at, {**inconsistent,
                                                "consulted_by": consultation.actor,
                                                **_decided_by(state, "blood_thinners")})


def _follow_up_missed(state: CourseState, zone: ZoneInfo) -> Finding | None:
    """FOLLOW_UP_MISSED (catalogue parameter `follow_up`), whatever the course's status,
    once the as-of local date is past `detail["latest"]` (`Contribution.findings`,
    which also leaves it out for a course whose patient was erased by then)."""
    unmet = rules.follow_up_unmet(state, zone)
    if unmet is None:
        return None
    _, ran_out, detail = unmet
    rule = state.safety.follow_up
    assert rule is not None
    return Finding("FOLLOW_UP_MISSED", state.course_id, rule.after_session, ran_out,
                   {**detail, **_decided_by(state, "follow_up")})


def _reaction_detail(reaction: Reaction) -> dict[str, Any]:
    return {"kind": reaction.kind, "severity": reaction.severity,
            "reported_by": reaction.actor, "reaction_at": iso(reaction.at),
            "reviewed_at": iso(reaction.reviewed_at), "reviewed_by": reaction.reviewed_by,
            "decision": reaction.decision}


def _reaction_findings(state: CourseState) -> Iterator[Finding]:
    """SEVERE_REACTION for each reaction of severity >= 3 or of a serious kind (the
    catalogue's `serious_reaction_kinds`); REACTION_UNREVIEWED, at its deadline, for one
    without a review within its 48 hours: it holds once the deadline is at or before the
    as-of moment (`Contribution.findings`). A review recorded later does not remove it:
    the finding says the deadline was missed."""
    for reaction in state.reactions:
        if not reaction.severe:
            continue
        detail = _reaction_detail(reaction)
        yield Finding("SEVERE_REACTION", state.course_id, reaction.session_no, reaction.at,
                      detail)
        deadline = reaction.at + REVIEW_WINDOW
        reviewed_in_time = reaction.reviewed_at is not None and reaction.reviewed_at <= deadline
        if not reviewed_in_time:
            yield Finding("REACTION_UNREVIEWED", state.course_id, reaction.session_no,
                          deadline, {**detail, "deadline": iso(deadline),
                                     "review_window_hours": 48})


def _overdue(state: CourseState, zone: ZoneInfo) -> Finding | None:
    """OVERDUE: an active or maintenance course with a `next.latest`; it holds once
    that date is before the as-of local date (`Contribution.findings`, which fills in
    `days_overdue` and leaves it out for a course whose patient was erased by then).
    `at` is the start of the local day after `next.latest`. A paused course is not
    overdue."""
    if state.status not in ("active", "maintenance"):
        return None
    window = rules.next_window(state, zone)
    if window is None or window["latest"] is None:
        return None
    latest = dt.date.fromisoformat(window["latest"])
    ran_out = dt.datetime.combine(latest + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    rule = rules.spacing_rule(state, window["session_no"])
    last = state.last_session
    detail = {"status": state.status, "earliest": window["earliest"],
              "target": window["target"], "latest": window["latest"],
              "planned_at": iso(window["planned_at"]),
              "last_session_at": iso(last.at) if last else None,
              "days_overdue": None, "rule": rule.source,
              "min_days": rule.min_days, "max_days": rule.max_days,
              "protocol": _protocol(state)}
    return Finding("OVERDUE", state.course_id, window["session_no"],
                   ran_out.astimezone(dt.UTC), detail)


def _licence_findings(practitioners: Iterable[rules.Practitioner], as_of: dt.datetime,
                      zone: ZoneInfo) -> Iterator[Finding]:
    """LICENSE_EXPIRING: licences ending 0..30 days after the as-of local date; expired
    ones are not listed (the engine already refuses their acts)."""
    today = rules.local_date(as_of, zone)
    for practitioner in practitioners:
        days_left = (practitioner.license_expires_on - today).days
        if 0 <= days_left <= LICENSE_HORIZON_DAYS:
            yield Finding("LICENSE_EXPIRING", None, None, as_of, {
                "practitioner_id": practitioner.practitioner_id,
                "role": practitioner.role,
                "license_expires_on": practitioner.license_expires_on.isoformat(),
                "days_left": days_left})


# -- from events to the report (pure) ----------------------------------------------------
def _nested_events(aggregate: type[Any]) -> list[type[Any]]:
    return [value for value in vars(aggregate).values()
            if isinstance(value, type) and issubclass(value, DomainEvent)]


def report_topics() -> list[str]:
    """The topics the report reads: every course event, every practitioner event, and
    patient erasures (not receipts, settings or the patient index), under every name
    they were stored (`domain.topics`)."""
    classes: list[type[Any]] = [*_nested_events(TreatmentCourse),
                                *_nested_events(PractitionerRecord), PatientRecord.Erased]
    # The library gives each aggregate its own `Created` and `Event` bases; never stored.
    return sorted({topic for cls in classes if cls.__name__ not in ("Created", "Event")
                   for topic in topics_of(cls)})


def build_report(events: Iterable[Any], *, as_of: dt.datetime, known_at: dt.datetime | None,
                 zone: ZoneInfo, under: Catalogue | None = None) -> Report:
    """The report from domain events given in recording order (any other events are
    ignored): select as a time-travel question does, fold, judge. `under` a catalogue,
    the same facts are judged as though every course had been opened under it
    (`fold_under`); a course whose indication it does not cover is judged as recorded
    and listed in `what_if["not_covered"]`."""
    by_originator: dict[UUID, list[Any]] = {}
    erasures: list[Any] = []
    kinds: dict[type, int] = {}  # the kind of each event class, decided once per class
    for event in events:
        kind = kinds.get(type(event))
        if kind is None:
            kind = kinds[type(event)] = _kind(type(event))
        if kind == _FOLDED:
            stream = by_originator.get(event.originator_id)
            if stream is None:
                by_originator[event.originator_id] = [event]
            else:
                stream.append(event)
        elif kind == _ERASURE:
            erasures.append(event)

    erased_ids = {e.originator_id for e in select_events(erasures, as_of=as_of,
                                                         known_at=known_at)}
    courses: dict[str, CourseState] = {}
    practitioners: dict[str, rules.Practitioner] = {}
    not_covered: list[str] = []
    for stream in by_originator.values():
        selected = select_events(stream, as_of=as_of, known_at=known_at)
        if not selected:
            continue
        if isinstance(stream[0], PractitionerRecord.Registered):
            practitioner = fold_practitioner(selected)
            if practitioner is not None:
                practitioners[practitioner.practitioner_id] = practitioner
            continue
        if under is not None and under.get(stream[0].indication) is not None:
            state = fold_under(selected, under, zone,
                               erased=patient_uuid(stream[0].patient_ref) in erased_ids)
        else:
            state = CourseState.fold(selected)
            if under is not None and state is not None:
                not_covered.append(state.course_id)
        if state is not None:
            courses[state.course_id] = state

    erased = frozenset(state.patient_ref for state in courses.values()
                       if erased_ids and patient_uuid(state.patient_ref) in erased_ids)
    findings = judge(courses.values(), practitioners.values(), as_of=as_of, zone=zone,
                     erased=erased)
    what_if = None if under is None else {"catalogue": under.identity(), "added": [],
                                          "removed": [], "not_covered": sorted(not_covered)}
    return Report(as_of=as_of, known_at=known_at, zone=zone, courses=courses,
                  practitioners=practitioners, erased=erased, findings=findings,
                  what_if=what_if)


def fold_under(events: list[Any], under: Catalogue, zone: ZoneInfo, *,
               erased: bool) -> CourseState | None:
    """A course's selected events folded as though it had been opened under `under`:
    its protocol and safety parameters (`CourseState.start`), each consultation's codes
    derived again from its screening answers with that catalogue's parameters
    (`rules.contraindications_from`; the codes recorded when the patient was erased,
    as the answers are gone), and each session's spacing decided again by that
    protocol (`rules.spacing_decision`, with the override reason recorded) and its
    cautions those then in force. Every other fact as recorded; nothing is changed in
    `events`."""
    state: CourseState | None = None
    for event in events:
        name = type(event).__name__
        if state is None:
            if name == "Opened":
                state = CourseState.start(event, under)
            continue
        if name == "ConsultationRecorded":
            screening = None if erased else getattr(event.screening, "data", None)
            if screening is not None:
                absolute, relative, from_medications = rules.contraindications_from(
                    screening, state.safety)
                event = _as_though(event, absolute=absolute, relative=relative,
                                   from_medications=from_medications)
        elif name == "SessionGiven":
            spacing = rules.spacing_decision(state, event.session_no, event.at, zone,
                                             event.spacing_override_reason)
            event = _as_though(event, rule=spacing.rule, gap_days=spacing.gap_days,
                               cautions=list(state.relative))
        state.apply(event)
    return state


def _as_though(event: Any, **changes: Any) -> Any:
    """A copy of a (frozen) recorded event with some fields as another catalogue would
    have decided them; the event itself is left as recorded."""
    other = copy.copy(event)
    for key, value in changes.items():
        object.__setattr__(other, key, value)
    return other


def what_if_report(recorded: Report, imagined: Report) -> Report:
    """The what-if report with `added` and `removed`: its findings against the recorded
    report's, compared as multisets of `(code, course_id, session_no)`."""
    def key(finding: Finding) -> tuple[str, str | None, int | None]:
        return (finding.code, finding.course_id, finding.session_no)

    assert imagined.what_if is not None
    left = Counter(key(f) for f in recorded.findings)
    added = []
    for finding in imagined.findings:
        if left[key(finding)] > 0:
            left[key(finding)] -= 1
        else:
            added.append(finding.as_dict())
    right = Counter(key(f) for f in imagined.findings)
    removed = []
    for finding in recorded.findings:
        if right[key(finding)] > 0:
            right[key(finding)] -= 1
        else:
            removed.append(finding.as_dict())
    return attrs.evolve(imagined, what_if={**imagined.what_if, "added": added,
                                           "removed": removed})


_IGNORED, _FOLDED, _ERASURE = 0, 1, 2


def _kind(cls: type) -> int:
    if issubclass(cls, PatientRecord.Erased):
        return _ERASURE
    if issubclass(cls, (TreatmentCourse.Opened, TreatmentCourse.Event,
                        PractitionerRecord.Registered, PractitionerRecord.LicenseRenewed)):
        return _FOLDED
    return _IGNORED


def fold_practitioner(events: Iterable[Any]) -> rules.Practitioner | None:
    """A practitioner as their selected events (in recording order) leave them."""
    practitioner: rules.Practitioner | None = None
    for event in events:
        if isinstance(event, PractitionerRecord.Registered):
            practitioner = rules.Practitioner(event.practitioner_id, event.role,
                                              event.license_expires_on)
        elif practitioner is not None:  # LicenseRenewed (ignored before a registration)
            practitioner = attrs.evolve(practitioner,
                                        license_expires_on=event.license_expires_on)
    return practitioner
