"""Snapshots of treatment courses: the library's snapshotting, made safe for this store.

The library takes a snapshot of a `TreatmentCourse` every `SNAPSHOT_INTERVAL` versions
(`Application.snapshotting_intervals`) and stores it through the application's mapper:
its personal data is encrypted under the patient's own key by the same transcoding as in
events (shredding covers snapshots too), and the `TaggingMapper` tags it with the
integrity key. The snapshot table is not part of the event log, so `verify` never walks
it; instead every snapshot is checked when read: one whose tag does not match, or whose
shape is not this code's `CourseState`, is ignored, and the state is folded from events.
A snapshot can therefore make a question faster, never its answer different.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import attrs
import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    EventStore,
    MapperDeserialisationError,
    StoredEvent,
    Transcoding,
)
from eventsourcing.sqlite import SQLiteAggregateRecorder

from coursebook.adapters.storage.integrity import TAG_LEN, event_tag
from coursebook.domain.course_state import (
    Adjustment,
    Consultation,
    CourseState,
    FollowUp,
    GivenSession,
    Override,
    Reaction,
    Scheduled,
)
from coursebook.domain.protocols import Safety
from coursebook.domain.schema import NewerRecord, UnknownRecord
from coursebook.domain.values import Product, SpacingRule
from coursebook.logs import get_logger

__all__ = ["NEWER", "NOT_INTACT", "OTHER_FORM", "SNAPSHOT_INTERVAL", "SnapshotStore",
           "delete_snapshot", "snapshot_segment", "snapshot_times", "snapshot_transcodings"]

SNAPSHOT_INTERVAL = 100
"""Versions between snapshots: a question decodes at most this many events past one."""

log = get_logger("coursebook")

_TUPLES: dict[type, tuple[str, ...]] = {CourseState: ("absolute", "relative"),
                                        Consultation: ("from_medications",)}


SNAPSHOT_FORMAT = 2
"""The snapshot's own stored form, raised whenever it changes without the state's fields
changing (2: the values inside are stored by name, domain/schema.py). Snapshots are a
cache: one of another form is ignored and the course is folded from its events."""


def _form(*classes: type) -> str:
    """A fingerprint of the snapshot format and the classes' fields: a snapshot written
    by code whose state had other fields, or another format, decodes as unusable instead
    of silently missing them."""
    names = ";".join(f"{c.__name__}:{','.join(a.name for a in attrs.fields(c))}"
                     for c in classes)
    return hashlib.sha256(f"{SNAPSHOT_FORMAT}|{names}".encode()).hexdigest()[:12]


FORM = _form(CourseState, GivenSession, Override, Reaction, Scheduled, Adjustment,
             Consultation, FollowUp)

NOT_INTACT = "its tag does not match its content"
OTHER_FORM = "another shape of state"
NEWER = "written by a newer coursebook"
"""Why a stored snapshot is not used (`SnapshotStore.examine`)."""


class UnusableSnapshot(Exception):
    """A stored snapshot this code cannot use (another shape of state)."""


class _AttrsAsList(Transcoding):
    """An attrs value as the list of its fields, in declaration order."""

    type: type
    name: str

    def __init__(self) -> None:
        self.fields = tuple(a.name for a in attrs.fields(self.type))
        self.tuples = frozenset(_TUPLES.get(self.type, ()))

    def encode(self, obj: Any) -> list[Any]:
        return [getattr(obj, name) for name in self.fields]

    def decode(self, data: list[Any]) -> Any:
        if len(data) != len(self.fields):
            raise UnusableSnapshot(self.name)
        values = {name: tuple(value) if name in self.tuples else value
                  for name, value in zip(self.fields, data, strict=True)}
        return self.type(**values)


class CourseStateAsList(_AttrsAsList):
    """The state, led by its form and `latest_at` (so `snapshot_times` finds them)."""

    type = CourseState
    name = "course_state"

    def __init__(self) -> None:
        super().__init__()
        self.sessions = self.fields.index("sessions")

    def encode(self, obj: Any) -> list[Any]:
        values = super().encode(obj)
        values[self.sessions] = orjson.dumps([_session(s) for s in obj.sessions]).decode()
        return [FORM, obj.latest_at, *values]

    def decode(self, data: list[Any]) -> Any:
        if len(data) < 2 or data[0] != FORM:
            raise UnusableSnapshot(self.name)
        values = data[2:]
        values[self.sessions] = [_given(s) for s in orjson.loads(values[self.sessions])]
        return super().decode(values)


_DATETIME = rb'\{"_type_":"datetime_iso","_data_":"([^"\\]*)"\}'
_SEGMENT = rb'"segment":\[([0-9]+),' + _DATETIME + rb'\],'
_LEAD = re.compile(
    rb'\{"timestamp":' + _DATETIME + rb',"topic":"[^"\\]*","state":\{(?:'
    + _SEGMENT.replace(b"(", b"(?:") + rb')?"_created_on":'
    + _DATETIME + rb',"_modified_on":' + _DATETIME
    + rb',"state":\{"_type_":"course_state","_data_":\["[0-9a-f]+",(?:null|'
    + _DATETIME + rb')')


def snapshot_times(state: bytes) -> tuple[dt.datetime, dt.datetime | None] | None:
    """(last recorded time, latest valid time) of a stored course snapshot, read from the
    fixed lead of its body without decoding the rest; None if the body does not lead so.
    A hint for choosing a snapshot: the decoded snapshot is checked again."""
    found = _LEAD.match(state, 0, 1024)
    if found is None:
        return None
    latest = found.group(4)
    return (dt.datetime.fromisoformat(found.group(3).decode()),
            None if latest is None else dt.datetime.fromisoformat(latest.decode()))


_SEGMENT_LEAD = re.compile(
    rb'\{"timestamp":' + _DATETIME + rb',"topic":"[^"\\]*","state":\{' + _SEGMENT)


def snapshot_segment(state: bytes) -> tuple[int, dt.datetime] | None:
    """(start, floor) of a stored course snapshot at version v: every event in versions
    start+1..v has a valid time at or after floor (`Coursebook.take_snapshot` writes it
    first in the body). None if the snapshot has none. Trust it only once the
    snapshot's tag is checked (`SnapshotStore.intact`)."""
    found = _SEGMENT_LEAD.match(state, 0, 512)
    if found is None:
        return None
    return int(found.group(2)), dt.datetime.fromisoformat(found.group(3).decode())


def _rule(rule: SpacingRule | None) -> list[Any] | None:
    return None if rule is None else [rule.min_days, rule.target_days, rule.max_days,
                                      rule.source]


def _session(obj: GivenSession) -> list[Any]:
    """A given session as plain JSON values. A long course's state is mostly sessions:
    all of them go into one JSON text, which the transcoder does not walk value by
    value (it would look for typed values in each); no personal data is in them."""
    rule, adjustment = obj.rule, obj.adjustment
    return [obj.session_no, obj.at.isoformat(), obj.actor,
            [[p.name, p.lot, p.expires_on.isoformat()] for p in obj.products],
            obj.maintenance,
            None if rule is None else [rule.min_days, rule.target_days, rule.max_days,
                                       rule.source],
            obj.gap_days, obj.spacing_override_reason, list(obj.cautions),
            [[o.code, o.justification, o.by, o.at.isoformat()] for o in obj.overrides],
            obj.aftercare, _rule(obj.protocol_rule),
            None if adjustment is None else [_rule(adjustment.rule), adjustment.by,
                                             adjustment.reason, adjustment.at.isoformat()]]


def _given(data: list[Any]) -> GivenSession:
    (session_no, at, actor, products, maintenance, rule, gap_days, reason, cautions,
     overrides, aftercare, protocol_rule, adjustment) = data
    parse, day = dt.datetime.fromisoformat, dt.date.fromisoformat
    return GivenSession(
        session_no=session_no, at=parse(at), actor=actor,
        products=tuple(Product(n, lot, day(expires)) for n, lot, expires in products),
        maintenance=maintenance, rule=None if rule is None else SpacingRule(*rule),
        gap_days=gap_days, spacing_override_reason=reason, cautions=tuple(cautions),
        overrides=tuple(Override(c, j, b, parse(a)) for c, j, b, a in overrides),
        aftercare=aftercare,
        protocol_rule=None if protocol_rule is None else SpacingRule(*protocol_rule),
        adjustment=None if adjustment is None else Adjustment(
            SpacingRule(*adjustment[0]), adjustment[1], adjustment[2], parse(adjustment[3])))


class OverrideAsList(_AttrsAsList):
    type = Override
    name = "override"


class ReactionAsList(_AttrsAsList):
    type = Reaction
    name = "reaction"


class ScheduledAsList(_AttrsAsList):
    type = Scheduled
    name = "scheduled"


class AdjustmentAsList(_AttrsAsList):
    type = Adjustment
    name = "adjustment"


class ConsultationAsList(_AttrsAsList):
    type = Consultation
    name = "consultation"


class FollowUpAsList(_AttrsAsList):
    type = FollowUp
    name = "follow_up"


class SafetyAsDict(Transcoding):
    """A course's safety parameters, by name (as a catalogue states them)."""

    type = Safety
    name = "safety"

    def encode(self, obj: Safety) -> dict[str, Any]:
        return obj.as_dict()

    def decode(self, data: dict[str, Any]) -> Safety:
        return Safety.from_dict(data)


def snapshot_transcodings() -> list[Transcoding]:
    """The course state's own types (events never hold them; snapshots do)."""
    return [CourseStateAsList(), OverrideAsList(), ReactionAsList(), ScheduledAsList(),
            AdjustmentAsList(), ConsultationAsList(), FollowUpAsList(), SafetyAsDict()]


class SnapshotStore(EventStore[UUID]):
    """The library's snapshot store, reading only snapshots that are intact and usable."""

    def get(self, originator_id: UUID, *, gt: int | None = None, lte: int | None = None,
            desc: bool = False, limit: int | None = None,
            ) -> Iterator[DomainEventProtocol[UUID]]:
        for stored in self.recorder.select_events(originator_id=originator_id, gt=gt,
                                                  lte=lte, desc=desc, limit=limit):
            snapshot = self.decode(stored)
            if snapshot is not None:
                yield snapshot

    def intact(self, stored: StoredEvent) -> bool:
        """Whether the stored snapshot's tag matches its content."""
        state = bytes(stored.state)
        key: bytes = getattr(self.mapper, "key")  # noqa: B009 (the TaggingMapper's)
        return len(state) > TAG_LEN and hmac.compare_digest(
            state[-TAG_LEN:], event_tag(key, stored.originator_id,
                                        stored.originator_version, stored.topic,
                                        state[:-TAG_LEN]))

    def examine(self, stored: StoredEvent) -> tuple[Any | None, str | None]:
        """(the snapshot, None) when it is usable, else (None, why not): `NOT_INTACT`,
        `OTHER_FORM` (written by code whose state had another shape or format) or
        `NEWER` (written by a newer coursebook: `domain.schema.NewerRecord`, or
        `UnknownRecord` for a snapshot class this code does not know)."""
        if not self.intact(stored):
            return None, NOT_INTACT
        try:
            return self.mapper.to_domain_event(stored), None
        except MapperDeserialisationError:  # UnusableSnapshot, wrapped
            return None, OTHER_FORM
        except (NewerRecord, UnknownRecord):  # a cache: the events decide for the store
            return None, NEWER

    def decode(self, stored: StoredEvent) -> Any | None:
        """The snapshot, or None (and a warning naming only its id and version) when it
        is not usable (`examine`)."""
        snapshot, reason = self.examine(stored)
        if reason is not None:
            log.warning("snapshot_ignored", aggregate=str(stored.originator_id),
                        version=stored.originator_version, reason=reason)
        return snapshot

    def delete(self, stored: StoredEvent) -> bool:
        """Deletes one stored snapshot (a cache entry: the events stay); False when this
        store cannot (the in-memory one, whose snapshots this process wrote itself)."""
        return delete_snapshot(self.recorder, UUID(str(stored.originator_id)),
                               stored.originator_version)


def delete_snapshot(recorder: Any, originator_id: UUID, version: int) -> bool:
    """Deletes the snapshot of `originator_id` at `version` from a SQL snapshot table."""
    if isinstance(recorder, SQLiteAggregateRecorder):
        with recorder.datastore.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {recorder.events_table_name} WHERE originator_id = ? "
                      "AND originator_version = ?", (originator_id.hex, version))
        return True
    if type(recorder).__module__ == "eventsourcing.postgres":
        from psycopg.sql import SQL, Identifier

        statement = SQL("DELETE FROM {schema}.{table} WHERE originator_id = %s "
                        "AND originator_version = %s").format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name))
        with recorder.datastore.transaction(commit=True) as curs:
            curs.execute(statement, (originator_id, version))
        return True
    return False
