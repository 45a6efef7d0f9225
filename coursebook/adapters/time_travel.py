"""A course's state at a version, a valid time and/or a recorded time, from a snapshot.

The answer is by definition the fold of `select_events` over all the course's events
(CONTRACT section 6); this is a faster way to the same state:

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
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import orjson

from coursebook.adapters.sealing import SealingMapper
from coursebook.adapters.snapshots import SNAPSHOT_INTERVAL, snapshot_times
from coursebook.domain.course import TreatmentCourse
from coursebook.domain.course_state import CourseState

__all__ = ["fold_course"]


def fold_course(app: Any, aggregate_id: UUID, *, version: int | None = None,
                as_of: dt.datetime | None = None, known_at: dt.datetime | None = None,
                ) -> tuple[CourseState | None, int]:
    """The state the selected events fold to (None when they hold no opening), and the
    number of stored events up to `version` (all of them without it; 0: no course)."""
    start, stored = _start(app, aggregate_id, version, as_of, known_at)
    state: CourseState | None = start
    rows = app.recorder.select_events(aggregate_id, gt=stored or None, lte=version)
    if rows:
        stored = rows[-1].originator_version
    filtering = as_of is not None or known_at is not None
    peek = _peeker(app) if filtering else None
    for row in rows:
        if filtering:
            at, timestamp = peek(row) if peek is not None else _times(app, row)
            if known_at is not None and timestamp > known_at:
                break
            if as_of is not None and at > as_of:
                continue
        event = app.mapper.to_domain_event(row)
        if state is None:
            if type(event).__name__ == "Opened":
                state = CourseState.start(event)
        else:
            state.apply(event)
    return state, stored


def _start(app: Any, aggregate_id: UUID, version: int | None, as_of: dt.datetime | None,
           known_at: dt.datetime | None) -> tuple[CourseState | None, int]:
    """The state of the newest usable intact snapshot and its version, or (None, 0)."""
    store = app.snapshots
    if store is None:
        return None, 0
    interval = app.snapshotting_intervals.get(TreatmentCourse, SNAPSHOT_INTERVAL)
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


def _peeker(app: Any) -> Any:
    """Reads `at` and `timestamp` from a stored row without decoding the event, when
    the rows are plain JSON (no library cipher or compressor configured)."""
    mapper = app.mapper
    if not isinstance(mapper, SealingMapper) or mapper.cipher or mapper.compressor:
        return None
    untagged = SealingMapper.untagged
    revive = mapper.transcoder.revive  # type: ignore[attr-defined]
    loads, parse = orjson.loads, dt.datetime.fromisoformat

    def when(value: Any) -> dt.datetime:
        if type(value) is dict and value.get("_type_") == "datetime_iso":
            return parse(value["_data_"])
        found: dt.datetime = revive(value)
        return found

    def peek(row: Any) -> tuple[dt.datetime, dt.datetime]:
        body = loads(untagged(row.state))
        return when(body["at"]), when(body["timestamp"])

    return peek


def _times(app: Any, row: Any) -> tuple[dt.datetime, dt.datetime]:
    event = app.mapper.to_domain_event(row)
    return event.at, event.timestamp
