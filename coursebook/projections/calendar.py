"""The calendar view: the next session of every course a clinic must book.

One row per course: its calendar entry (the next-session window plus `course_id`,
`patient_ref`, `practitioner_id`, `cautions`, `blocked_by`) when the course is `active`
or `maintenance`, else none; the day it falls on in the clinic zone (the planned local
date, or the target date while unplanned); and whether its patient was erased.

The entry is computed by the same fold (`CourseState`) and the same rule functions
(`rules.next_window`, `rules.blocked_by`) as `course show`, so the two cannot disagree.
To fold fast, the projection turns each stored JSON body into a plain attribute object in
one pass (`_Body`), never decoding the personal fields; it keeps the
folded states of the courses it has seen in memory, and loads a course's earlier events
from the store the first time a page touches it (a live update after a restart).
"""

from __future__ import annotations

import datetime as dt
import functools
import typing
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from coursebook.domain import rules
from coursebook.domain.course import TreatmentCourse
from coursebook.domain.course_state import CourseState
from coursebook.domain.ids import patient_uuid
from coursebook.domain.patient import PatientRecord
from coursebook.domain.values import SpacingRule
from coursebook.projections.course_view import follow_up, iso
from coursebook.projections.view_projection import EventSource, Row, ViewProjection, Write

__all__ = ["CalendarProjection", "calendar_entry", "course_topics"]

PERSONAL_FIELDS = frozenset({"patient", "screening", "notes"})
"""Never decoded by the views: the calendar does not need them."""

UNREAD_FIELDS = frozenset({"products"})
"""Kept in their stored form: the calendar never looks inside them."""

NOT_FOLDED = frozenset({"timestamp", "originator_id", "originator_version",
                        "originator_id_type"})
"""Typed fields of every event that `CourseState` never reads: left as stored."""

CACHE_LIMIT = 200_000
"""Folded courses kept in memory; beyond it the cache starts again (misses reload)."""


def _course_event_classes() -> list[type]:
    classes = [value for value in vars(TreatmentCourse).values()
               if isinstance(value, type) and issubclass(value, TreatmentCourse.Event)
               and value is not TreatmentCourse.Event]
    return [TreatmentCourse.Opened, *classes]


def course_topics() -> list[str]:
    return sorted(get_topic(c) for c in _course_event_classes())


@functools.lru_cache(maxsize=65_536)
def patient_key(patient_ref: str) -> str:
    """The view's key for a patient (the id of the patient's record, as hex)."""
    return patient_uuid(patient_ref).hex


def typed_fields(event_class: type) -> tuple[str, ...] | None:
    """The fields of a course event whose stored form may hold a value of a registered
    type the fold reads (dates, rules, protocols, personal data, lists of records), from
    the event's annotations; every other field is a plain JSON value stored as is.
    None when the annotations cannot be read (then every field is looked at)."""
    try:
        hints = typing.get_type_hints(event_class)
    except (NameError, TypeError):
        return None
    plain = (str, int, float, bool, type(None), list[str])
    out = []
    for name, hint in hints.items():
        if name in NOT_FOLDED or name in UNREAD_FIELDS:
            continue
        args = typing.get_args(hint) if typing.get_origin(hint) is not list else (hint,)
        if hint in plain or (args and all(arg in plain for arg in args)):
            continue
        out.append(name)
    return tuple(out)


def calendar_entry(state: CourseState, zone: ZoneInfo) -> tuple[str, dict[str, Any]] | None:
    """(the local day it falls on, the entry) for a course on the calendar, else None."""
    if state.status not in ("active", "maintenance"):
        return None
    window = rules.next_window(state, zone)
    if window is None:
        return None
    planned: dt.datetime | None = window["planned_at"]
    scheduled = state.scheduled
    practitioner = scheduled.practitioner_id if planned is not None and scheduled else None
    day = rules.local_date(planned, zone).isoformat() if planned is not None \
        else window["target"]
    entry = {**window, "planned_at": iso(planned), "course_id": state.course_id,
             "patient_ref": state.patient_ref, "practitioner_id": practitioner,
             "cautions": sorted(state.relative),
             "blocked_by": rules.blocked_by(state, erased=False),
             "follow_up": follow_up(state, zone)}
    return day, entry


def _copy(value: Any) -> Any:
    """A fresh copy of a decoded JSON value (to revive without touching the original)."""
    return orjson.loads(orjson.dumps(value))


class _Body:
    """An event body read from its stored JSON: its fields as attributes, its class name
    the event's (all `CourseState.apply` dispatches on). `converter` rebuilds the values
    of registered types, with fast paths for the common ones; personal fields are never
    decoded (None) and products are left in their stored form (the calendar never looks
    inside them). Protocols and spacing rules are immutable values, so equal stored forms
    share one object. The decoded document may be shared with other views (a rebuild of
    them all decodes each body once): `convert` replaces values in `data` only, and
    revives copies of the containers it finds, never the containers themselves."""

    shared: dict[Any, Any] = {}  # one cache for every event class
    typed: tuple[str, ...] | None = None  # the fields to look at (None: every field)

    @classmethod
    def convert(cls, data: dict[str, Any], revive: Callable[[Any], Any]) -> Any:
        shared = cls.shared
        typed = cls.typed
        for name in data if typed is None else typed:
            value: Any = data.get(name)
            kind = type(value)
            if kind is dict:
                stored = value.get("_type_")
                if stored == "datetime_iso":
                    data[name] = dt.datetime.fromisoformat(value["_data_"])
                elif stored == "spacing_rule":
                    fields = value["_data_"]  # by name (domain/schema.py)
                    numbers = (fields["min_days"], fields["target_days"],
                               fields["max_days"], fields.get("source", ""))
                    rule = shared.get(numbers)
                    if rule is None:
                        rule = shared[numbers] = SpacingRule(*numbers)
                    data[name] = rule
                elif stored == "protocol":
                    body = orjson.dumps(value)
                    protocol = shared.get(body)
                    if protocol is None:
                        protocol = shared[body] = revive(orjson.loads(body))
                    data[name] = protocol
                else:
                    data[name] = None if name in PERSONAL_FIELDS else revive(_copy(value))
            elif kind is list and value and type(value[0]) is not str \
                    and name not in UNREAD_FIELDS:
                data[name] = revive(_copy(value))
        event = cls.__new__(cls)
        event.__dict__ = data
        return event


Folded = tuple[dict[Any, CourseState], list[tuple[str]]]
"""A folded page: the courses it touched (by aggregate id) and the patients it erased."""


class CalendarProjection(ViewProjection):
    name = "calendar"
    topics = (*course_topics(), get_topic(PatientRecord.Erased))
    topics_folded: frozenset[str] = frozenset(topics)
    """The topics `fold_page` is given (two projections share folds only if equal)."""
    tables: tuple[str, ...] = ("view_calendar",)
    format_version = 2  # 1: before catalogues (no screening_valid_until, no follow_up)
    ddl = (
        "CREATE TABLE IF NOT EXISTS view_calendar (course_id TEXT PRIMARY KEY, "
        "patient_key TEXT NOT NULL, day TEXT, entry TEXT, erased INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX IF NOT EXISTS view_calendar_day ON view_calendar (day)",
        "CREATE INDEX IF NOT EXISTS view_calendar_patient ON view_calendar (patient_key)",
    )
    UPSERT = ("INSERT INTO view_calendar (course_id, patient_key, day, entry) "
              "VALUES (?, ?, ?, ?) ON CONFLICT (course_id) DO UPDATE "
              "SET day = excluded.day, entry = excluded.entry")
    ERASE = "UPDATE view_calendar SET erased = 1 WHERE patient_key = ?"

    def __init__(self, view: Any, app: EventSource, *,
                 decode: Callable[[str, bytes], dict[str, Any]],
                 stored_json: Callable[[bytes], bytes] | None) -> None:
        super().__init__(view, app, decode=decode, stored_json=stored_json)
        self.states: dict[Any, CourseState] = {}
        self._classes: dict[str, type[_Body]] = {}
        self._erased_topic = get_topic(PatientRecord.Erased)
        self._opened_topic = get_topic(TreatmentCourse.Opened)
        transcoder = app.mapper.transcoder
        self._revive = getattr(transcoder, "revive", None)
        self._event_classes = {get_topic(cls): cls for cls in _course_event_classes()}
        self._leader: CalendarProjection | None = None  # whose folds this one reuses
        self._followed = False  # whether another projection reuses this one's folds
        self._folded: tuple[list[int], Folded] | None = None  # the last fold, for them

    def forget(self) -> None:
        self.states = {}

    def join(self, before: Sequence[ViewProjection]) -> None:
        """Folds the pages no more in a shared rebuild: reuses the folds of the first
        projection before it that folds the same way (the calendar, for the compliance
        view), whose course states move on in step with the pages both apply."""
        for other in before:
            if isinstance(other, CalendarProjection) and other._leader is None \
                    and other.app is self.app and other.topics_folded == self.topics_folded:
                self._leader, other._followed = other, True
                self.forget()
                return

    def leave(self) -> None:
        if self._leader is not None:  # its states were the leader's: none of its own
            self._leader = None
            self.forget()
        self._followed, self._folded = False, None

    def _event(self, topic: str, state: bytes) -> Any:
        return self._convert(topic, self.decode(topic, state))

    def _convert(self, topic: str, data: dict[str, Any]) -> Any:
        cls = self._classes.get(topic)
        if cls is None:
            known = self._event_classes.get(topic)
            typed = None if known is None else typed_fields(known)
            cls = type(topic.rpartition(".")[2], (_Body,), {"typed": typed})
            self._classes[topic] = cls
        return cls.convert(data, self._revive)  # type: ignore[arg-type]

    def _state_before(self, originator: Any, version: int) -> CourseState | None:
        """A course first met mid-history: fold its events before this one from the store."""
        return CourseState.fold(list(self.app.events.get(UUID(str(originator)),
                                                         lte=version - 1)))

    def page(self, rows: Sequence[Row],
             bodies: Sequence[dict[str, Any]] | None = None) -> list[Write]:
        zone: ZoneInfo = self.app.zone
        touched, erased = self.fold_page(rows, bodies)
        out = []
        for state in touched.values():
            placed = calendar_entry(state, zone)
            day, entry = placed if placed is not None else (None, None)
            out.append((state.course_id, patient_key(state.patient_ref), day,
                        None if entry is None else orjson.dumps(entry).decode()))
        return [(self.UPSERT, out), (self.ERASE, erased)]

    def fold_page(self, rows: Sequence[Row], bodies: Sequence[dict[str, Any]] | None = None,
                  ) -> Folded:
        """Folds a page into the courses' states: (each course the page touched, by
        aggregate id, its state after it; each erased patient's key, as a 1-tuple).
        While following another projection (`join`), its fold of the same page is
        reused, read only; a page it did not fold (it left the pass) ends that."""
        leader = self._leader
        if leader is not None:
            memo = leader._folded
            if memo is not None and memo[0] == [r[0] for r in rows]:
                return memo[1]
            self._leader = None  # out of step: fold alone, reloading what it needs
            self.forget()
        folded = self._fold(rows, bodies)
        if self._followed:
            self._folded = ([r[0] for r in rows], folded)
        return folded

    def _fold(self, rows: Sequence[Row], bodies: Sequence[dict[str, Any]] | None) -> Folded:
        if len(self.states) > CACHE_LIMIT:
            self.states = {}
        touched: dict[Any, CourseState] = {}
        erased: list[tuple[str]] = []
        states, opened, erasure = self.states, self._opened_topic, self._erased_topic
        if self._revive is None:  # another transcoder: the mapper's full decoding
            to_event = self.app.mapper.to_domain_event
            events = [to_event(Notification(id=r[0], originator_id=UUID(str(r[1])),
                                            originator_version=r[2], topic=r[3], state=r[4]))
                      if r[3] != erasure else None for r in rows]
        elif bodies is None:
            event_of = self._event
            events = [event_of(r[3], r[4]) if r[3] != erasure else None for r in rows]
        else:  # decoded for several views: converted in a copy
            convert = self._convert
            events = [convert(r[3], dict(body)) if r[3] != erasure else None
                      for r, body in zip(rows, bodies, strict=True)]
        for (_, key, version, topic, _), event in zip(rows, events, strict=True):
            if event is None:
                erased.append((UUID(str(key)).hex,))
                continue
            if topic == opened:
                state = CourseState.start(event)
                states[key] = state
            else:
                found = states.get(key)
                if found is None:
                    found = self._state_before(key, version)
                    if found is None:
                        continue
                    states[key] = found
                found.apply(event)
                state = found
            touched[key] = state
        return touched, erased

    # -- queries -----------------------------------------------------------------------
    def entries(self, start: dt.date | None = None,
                end: dt.date | None = None) -> list[dict[str, Any]]:
        """The calendar between two local dates (inclusive, open when None), by day."""
        sql = "SELECT day, entry FROM view_calendar WHERE entry IS NOT NULL AND erased = 0"
        params: list[Any] = []
        if start is not None:
            sql += " AND day >= ?"
            params.append(start.isoformat())
        if end is not None:
            sql += " AND day <= ?"
            params.append(end.isoformat())
        rows = [(row[0], orjson.loads(row[1])) for row in self.tables_view.query(sql, params)]
        # By day; within a day the planned sessions by their time, then the unplanned ones.
        rows.sort(key=lambda row: (row[0], row[1]["planned_at"] is None,
                                   row[1]["planned_at"] or "", row[1]["course_id"]))
        return [entry for _, entry in rows]
