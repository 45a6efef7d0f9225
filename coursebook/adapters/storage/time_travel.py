"""A course's state at a version, a valid time and/or a recorded time, from a snapshot.

The answer is by definition the fold of `select_events` over all the course's events
(docs/reference.md, "Course"); this is a faster way to the same state:

- a snapshot after version v stands for events 1..v. It may start the fold only if all
  of them are selected: v <= `version`, their latest valid time (`CourseState.latest_at`)
  <= `as_of` (a back-dated event among them would otherwise be counted), and the last
  one recorded (`_modified_on`; recording times only grow) at or before `known_at`.
  Usability only shrinks as v grows, so the newest usable snapshot is the best start;
- the events after it are read as stored rows; only their `at` and `timestamp` are
  parsed (orjson) to select them, and only the selected ones are decoded. Past the first
  row recorded after `known_at`, none can be selected.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from uuid import UUID

import attrs
import orjson

from coursebook.adapters.storage.bulk_reads import select_rows
from coursebook.adapters.storage.integrity import TaggingMapper
from coursebook.adapters.storage.snapshots import (
    SNAPSHOT_INTERVAL,
    snapshot_segment,
    snapshot_times,
)
from coursebook.domain.course_state import CourseState
from coursebook.domain.schema import record_class, upgrade

__all__ = ["CourseReader", "fold_course", "stored_rows"]

PAGE = 64


@attrs.frozen
class CourseReader:
    """What a time-travel question reads: the events (recorder, mapper), the snapshots
    (None when the store keeps none) and the snapshotting interval of courses."""

    recorder: Any
    mapper: Any
    snapshots: Any
    interval: int = SNAPSHOT_INTERVAL


def fold_course(reader: CourseReader, aggregate_id: UUID, *, version: int | None = None,
                as_of: dt.datetime | None = None, known_at: dt.datetime | None = None,
                ) -> tuple[CourseState | None, int]:
    """The state the selected events fold to (None when they hold no opening), and the
    number of stored events up to `version` (all of them without it; 0: no course)."""
    start, stored = _start(reader, aggregate_id, version, as_of, known_at)
    state: CourseState | None = start
    checked: list[Any] = [None, b""]  # the row the selector last checked, its payload
    select = _selector(reader, as_of, known_at, checked)
    decode_payload = getattr(reader.mapper, "decode_payload", None)
    skips = [] if as_of is None else _skips(reader, aggregate_id, stored, as_of)
    for row in _rows_except(reader, aggregate_id, stored, version, skips):
        stored = row.originator_version
        if select is not None:
            chosen = select(row)
            if chosen is _STOP:
                return state, _last(reader, aggregate_id, stored, version)
            if chosen is _SKIP:
                continue
        if decode_payload is not None and checked[0] is row:  # its tag checked already
            event = decode_payload(row, checked[1])
        else:
            event = reader.mapper.to_domain_event(row)
        if state is None:
            if type(event).__name__ == "Opened":
                state = CourseState.start(event)
        else:
            state.apply(event)
    if skips:  # the last rows may have been skipped unread
        stored = _last(reader, aggregate_id, stored, version)
    return state, stored


def _skips(reader: CourseReader, aggregate_id: UUID, after: int,
           as_of: dt.datetime) -> list[tuple[int, int]]:
    """Version ranges (low, high] after `after` in which no event is valid by `as_of`:
    the segments of later intact snapshots whose floor (the earliest valid time among
    their events, `snapshot_segment`) is after it. Sorted, not overlapping."""
    store = reader.snapshots
    if store is None:
        return []
    found: list[tuple[int, int]] = []
    for row in store.recorder.select_events(aggregate_id, gt=after or None):
        segment = snapshot_segment(bytes(row.state))
        if segment is not None and segment[1] > as_of and store.intact(row):
            found.append((max(segment[0], after), int(row.originator_version)))
    merged: list[tuple[int, int]] = []
    for low, high in sorted(found):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _rows_except(reader: CourseReader, aggregate_id: UUID, after: int, version: int | None,
                 skips: list[tuple[int, int]]) -> Iterator[Any]:
    """`stored_rows` after `after` up to `version`, without the `skips` ranges."""
    low = after
    for skip_low, skip_high in skips:
        if version is not None and skip_low >= version:
            break
        if skip_low > low:
            yield from stored_rows(reader, aggregate_id, low, skip_low)
        low = max(low, skip_high)
    if version is None or low < version:
        yield from stored_rows(reader, aggregate_id, low, version)


def stored_rows(reader: CourseReader, aggregate_id: UUID, after: int,
                version: int | None) -> Iterator[Any]:
    """The stored events after version `after`, up to `version`, in pages (a question
    known at a moment usually stops after the first few)."""
    page = PAGE
    while True:
        rows: Sequence[Any] | None = select_rows(reader.recorder, aggregate_id, gt=after,
                                                 lte=version, limit=page)
        if rows is None:
            rows = reader.recorder.select_events(aggregate_id, gt=after or None, lte=version,
                                              limit=page)
        yield from rows
        if len(rows) < page:
            return
        after, page = rows[-1].originator_version, page * 4


def _last(reader: CourseReader, aggregate_id: UUID, seen: int, version: int | None) -> int:
    """The number of stored events up to `version`, having seen `seen` of them."""
    rows = reader.recorder.select_events(aggregate_id, lte=version, desc=True, limit=1)
    return int(rows[0].originator_version) if rows else seen


def _start(reader: CourseReader, aggregate_id: UUID, version: int | None, as_of: dt.datetime | None,
           known_at: dt.datetime | None) -> tuple[CourseState | None, int]:
    """The state of the newest usable intact snapshot and its version, or (None, 0)."""
    store = reader.snapshots
    if store is None:
        return None, 0
    interval = reader.interval
    for row in _candidates(store, aggregate_id, version, as_of, known_at, interval):
        snapshot = store.decode(row)
        if snapshot is None:
            continue  # not intact: an older one, or the events alone
        aggregate_state = snapshot.state
        state: CourseState = aggregate_state["state"]
        if _usable((aggregate_state["_modified_on"], state.latest_at), as_of, known_at):
            return state, int(row.originator_version)
    return None, 0


def _candidates(store: Any, aggregate_id: UUID, version: int | None,
                as_of: dt.datetime | None, known_at: dt.datetime | None,
                interval: int) -> Iterator[Any]:
    """Stored snapshots that look usable (`snapshot_times`), newest first.

    Usability only shrinks as the version grows, so the newest usable one is found by a
    binary search over the snapshot versions (multiples of the interval), each probe
    reading one row's lead; older ones follow in case the chosen one is not intact."""
    def newest(lte: int | None) -> Any | None:
        rows = store.recorder.select_events(aggregate_id, lte=lte, desc=True, limit=1)
        return rows[0] if rows else None

    def usable(row: Any) -> bool:
        times = snapshot_times(bytes(row.state))
        return times is None or _usable(times, as_of, known_at)  # None: decode to know

    row = newest(version)
    if row is None:
        return
    best, low, high = None, 0, row.originator_version
    if usable(row):
        best = row
    else:
        high = row.originator_version - 1
        while low < high:
            probe = interval * ((low // interval + high // interval + 1) // 2)
            probe = probe if low < probe <= high else high
            found = newest(probe)
            if found is None or found.originator_version <= low:
                low = probe
            elif usable(found):
                best, low = found, probe
            else:
                high = found.originator_version - 1
    while best is not None:
        yield best
        best = newest(best.originator_version - 1)


def _usable(times: tuple[dt.datetime, dt.datetime | None], as_of: dt.datetime | None,
            known_at: dt.datetime | None) -> bool:
    recorded, latest_at = times
    return (as_of is None or (latest_at is not None and latest_at <= as_of)) \
        and (known_at is None or recorded <= known_at)


_TAKE, _SKIP, _STOP = "take", "skip", "stop"


def _selector(reader: CourseReader, as_of: dt.datetime | None,
              known_at: dt.datetime | None,
              checked: list[Any] | None = None) -> Callable[[Any], str] | None:
    """Whether a stored row is selected (`_TAKE`), not (`_SKIP`), or neither it nor any
    later one (`_STOP`: recorded after `known_at`); None when every row is taken.

    Reads `at` and `timestamp` from the row's JSON without decoding the event (the
    bounds in UTC, as stored, so each comparison is a plain one); if the rows are not
    plain JSON (a library cipher or compressor is configured), decodes each one."""
    if as_of is None and known_at is None:
        return None
    mapper = reader.mapper
    if not isinstance(mapper, TaggingMapper) or mapper.cipher or mapper.compressor:
        def decoded(row: Any) -> str:
            event = mapper.to_domain_event(row)
            if known_at is not None and event.timestamp > known_at:
                return _STOP
            return _SKIP if as_of is not None and event.at > as_of else _TAKE
        return decoded
    revive = mapper.transcoder.revive  # type: ignore[attr-defined]
    check = mapper.check_row
    loads, parse = orjson.loads, dt.datetime.fromisoformat
    until = None if as_of is None else as_of.astimezone(dt.UTC)
    known = None if known_at is None else known_at.astimezone(dt.UTC)

    def when(value: Any) -> dt.datetime:
        if type(value) is dict and value.get("_type_") == "datetime_iso":
            return parse(value["_data_"])
        found: dt.datetime = revive(value)
        return found

    classes: dict[str, type] = {}

    def peek(row: Any) -> str:
        # Brought to its class's version first (domain/schema.py), like every read.
        cls = classes.get(row.topic)
        if cls is None:
            cls = classes[row.topic] = record_class(row.topic)
        # The tag checked first: a changed row may not decide what is selected either.
        payload = check(row.originator_id, row.originator_version, row.topic, row.state)
        if checked is not None:
            checked[0], checked[1] = row, payload
        body = upgrade(cls, row.topic, loads(payload))
        if known is not None and when(body["timestamp"]) > known:
            return _STOP
        return _SKIP if until is not None and when(body["at"]) > until else _TAKE

    return peek
