"""The calendar view: the next session of every course a clinic must book (CONTRACT 5).

One row per course: its calendar entry (the next-session window plus `course_id`,
`patient_ref`, `practitioner_id`, `cautions`, `blocked_by`) when the course is `active`
or `maintenance`, else none; the day it falls on in the clinic zone (the planned local
date, or the target date while unplanned); and whether its patient was erased.

The entry is computed by the same fold (`CourseState`) and the same rule functions
(`rules.next_window`, `rules.blocked_by`) as `course show`, so the two cannot disagree.
To fold fast, the projection reads event bodies lazily from the stored JSON (`_Lazy`),
decoding only the fields the fold touches and never the personal ones; it keeps the
folded states of the courses it has seen in memory, and loads a course's earlier events
from the store the first time a page touches it (a live update after a restart).
"""

from __future__ import annotations

import datetime as dt
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
from coursebook.projections.course_view import iso
from coursebook.projections.views import Row, ViewProjection, Write

__all__ = ["CalendarProjection", "calendar_entry", "course_topics"]

PERSONAL_FIELDS = frozenset({"patient", "screening", "notes"})
"""Never decoded by the views: the calendar does not need them."""

UNREAD_FIELDS = frozenset({"products"})
"""Kept in their stored form: the calendar never looks inside them."""

CACHE_LIMIT = 200_000
"""Folded courses kept in memory; beyond it the cache starts again (misses reload)."""


def course_topics() -> list[str]:
    classes = [value for value in vars(TreatmentCourse).values()
               if isinstance(value, type) and issubclass(value, TreatmentCourse.Event)
               and value is not TreatmentCourse.Event]
    return sorted([get_topic(TreatmentCourse.Opened), *(get_topic(c) for c in classes)])


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
             "blocked_by": rules.blocked_by(state, erased=False)}
    return day, entry


class _Body:
    """An event body read from its stored JSON: its fields as attributes, its class name
    the event's (all `CourseState.apply` dispatches on). `converter` rebuilds the values
    of registered types, with fast paths for the common ones; personal fields are never
    decoded (None) and products are left in their stored form (the calendar never looks
    inside them). Protocols and spacing rules are immutable values, so equal stored forms
    share one object."""

    shared: dict[Any, Any] = {}  # one cache for every event class

    @classmethod
    def convert(cls, data: dict[str, Any], revive: Callable[[Any], Any]) -> Any:
        shared = cls.shared
        for name, value in data.items():
            kind = type(value)
            if kind is dict:
                stored = value.get("_type_")
                if stored == "datetime_iso":
                    data[name] = dt.datetime.fromisoformat(value["_data_"])
                elif stored == "spacing_rule":
                    numbers = tuple(value["_data_"])
                    rule = shared.get(numbers)
                    if rule is None:
                        rule = shared[numbers] = SpacingRule(*numbers)
                    data[name] = rule
                elif stored == "protocol":
                    body = orjson.dumps(value)
                    protocol = shared.get(body)
                    if protocol is None:
                        protocol = shared[body] = revive(value)
                    data[name] = protocol
                else:
                    data[name] = None if name in PERSONAL_FIELDS else revive(value)
            elif kind is list and value and type(value[0]) is not str \
                    and name not in UNREAD_FIELDS:
                data[name] = revive(value)
        event = cls.__new__(cls)
        event.__dict__ = data
        return event


class CalendarProjection(ViewProjection):
    name = "calendar"
    topics = (*course_topics(), get_topic(PatientRecord.Erased))
    tables = ("view_calendar",)
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

    def __init__(self, view: Any, app: Any) -> None:
        super().__init__(view, app)
        self.states: dict[Any, CourseState] = {}
        self._classes: dict[str, type[_Body]] = {}
        self._erased_topic = get_topic(PatientRecord.Erased)
        self._opened_topic = get_topic(TreatmentCourse.Opened)
        transcoder = app.mapper.transcoder
        self._revive = getattr(transcoder, "revive", None)

    def forget(self) -> None:
        self.states = {}

    def _event(self, topic: str, state: bytes) -> Any:
        cls = self._classes.get(topic)
        if cls is None:
            cls = type(topic.rpartition(".")[2], (_Body,), {})
            self._classes[topic] = cls
        return cls.convert(self.decode(state), self._revive)  # type: ignore[arg-type]

    def _state_before(self, originator: Any, version: int) -> CourseState | None:
        """A course first met mid-history: fold its events before this one from the store."""
        return CourseState.fold(list(self.app.events.get(UUID(str(originator)),
                                                         lte=version - 1)))

    def page(self, rows: Sequence[Row]) -> list[Write]:
        if len(self.states) > CACHE_LIMIT:
            self.states = {}
        zone: ZoneInfo = self.app.zone  # type: ignore[attr-defined]
        touched: dict[Any, CourseState] = {}
        erased: list[tuple[str]] = []
        states, opened, erasure = self.states, self._opened_topic, self._erased_topic
        if self._revive is None:  # another transcoder: the mapper's full decoding
            to_event = self.app.mapper.to_domain_event
            events = [to_event(Notification(id=r[0], originator_id=UUID(str(r[1])),
                                            originator_version=r[2], topic=r[3], state=r[4]))
                      if r[3] != erasure else None for r in rows]
        else:
            event_of = self._event
            events = [event_of(r[3], r[4]) if r[3] != erasure else None for r in rows]
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
        out = []
        for state in touched.values():
            placed = calendar_entry(state, zone)
            day, entry = placed if placed is not None else (None, None)
            out.append((state.course_id, patient_uuid(state.patient_ref).hex, day,
                        None if entry is None else orjson.dumps(entry).decode()))
        return [(self.UPSERT, out), (self.ERASE, erased)]

    # -- queries -----------------------------------------------------------------------
    def entries(self, start: dt.date | None = None,
                end: dt.date | None = None) -> list[dict[str, Any]]:
        """The calendar between two local dates (inclusive, open when None), by day."""
        sql = "SELECT entry FROM view_calendar WHERE entry IS NOT NULL AND erased = 0"
        params: list[Any] = []
        if start is not None:
            sql += " AND day >= ?"
            params.append(start.isoformat())
        if end is not None:
            sql += " AND day <= ?"
            params.append(end.isoformat())
        sql += " ORDER BY day, course_id"
        return [orjson.loads(row[0]) for row in self.view.query(sql, params)]
