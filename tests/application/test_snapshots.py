"""Snapshots (adapters/snapshots.py, adapters/time_travel.py) change no answer.

Property: over generated courses with back-dated facts and random snapshot intervals,
`get_course` with any mix of `version`, `as_of` and `known_at` starts from a snapshot
yet folds to the same state as the plain fold of `select_events` over every event.
Snapshots carry personal data only encrypted under the patient's key (shredding covers
them), and a snapshot whose tag does not match is ignored, never believed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coursebook.adapters.storage.time_travel import fold_course
from coursebook.clock import FixedClock
from coursebook.domain.course import TreatmentCourse
from coursebook.domain.course_state import CourseState
from coursebook.domain.ids import course_uuid
from coursebook.domain.selection import select_events
from coursebook.errors import Rejected
from coursebook.service.application import Coursebook
from tests.application.test_replay_property import COURSES, opening_steps, steps
from tests.builders import PATIENT
from tests.stores import PERSISTENT_KINDS, START, make_app, params, release, target

SECRET = "Allergic to lidocaine"


def snapshotting(app: Coursebook, interval: int) -> Coursebook:
    """The same application with snapshots every `interval` course versions."""
    app.snapshotting_intervals = {TreatmentCourse: interval}
    return app


def run(app: Coursebook, clock: FixedClock, sequence: list[tuple[int, dict[str, Any]]],
        *, batch: bool) -> None:
    bodies = []
    for advance, body in opening_steps() + sequence:
        clock.advance(dt.timedelta(seconds=advance))
        if batch:
            bodies.append(body)
            continue
        with contextlib.suppress(Rejected):
            app.execute(body)
    if batch:
        app.execute_batch(bodies)


def plain(app: Coursebook, course_id: str, **when: Any) -> CourseState | None:
    events = list(app.events.get(course_uuid(course_id)))
    return CourseState.fold(select_events(events, **when))


def check(app: Coursebook, data: st.DataObject, interval: int) -> None:
    for course_id in COURSES:
        events = list(app.events.get(course_uuid(course_id)))
        assert app.snapshots is not None
        taken = list(app.snapshots.get(course_uuid(course_id)))
        assert len(taken) == len(events) // interval
        ats = sorted({e.at for e in events})
        stamps = sorted({e.timestamp for e in events})
        for _ in range(6):
            when: dict[str, Any] = {}
            if data.draw(st.booleans()):
                when["version"] = data.draw(st.integers(1, len(events)))
            if data.draw(st.booleans()):
                at = data.draw(st.sampled_from(ats))
                when["as_of"] = at + dt.timedelta(seconds=data.draw(st.sampled_from([-1, 0])))
            if data.draw(st.booleans()):
                when["known_at"] = data.draw(st.sampled_from(stamps))
            state, stored = fold_course(app.course_reader, course_uuid(course_id), **when)
            assert state == plain(app, course_id, **when), when
            assert stored == when.get("version", len(events))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=steps(), interval=st.integers(1, 4), batch=st.booleans(), data=st.data())
def test_snapshot_assisted_answers_equal_the_plain_fold(
        sequence: list[tuple[int, dict[str, Any]]], interval: int, batch: bool,
        data: st.DataObject) -> None:
    check_kind("memory", sequence, interval, batch, data)


@pytest.mark.parametrize("kind", params(PERSISTENT_KINDS))
def test_snapshot_assisted_answers_equal_the_plain_fold_on_disk(kind: str) -> None:
    @settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(sequence=steps(), interval=st.integers(1, 4), batch=st.booleans(),
           data=st.data())
    def replays(sequence: list[tuple[int, dict[str, Any]]], interval: int, batch: bool,
                data: st.DataObject) -> None:
        check_kind(kind, sequence, interval, batch, data)

    replays()


def check_kind(kind: str, sequence: list[tuple[int, dict[str, Any]]], interval: int,
               batch: bool, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory(prefix="coursebook-snapshots-") as tmp:
        clock = FixedClock(START)
        app = snapshotting(make_app(kind, Path(tmp), clock), interval)
        try:
            run(app, clock, sequence, batch=batch)
            check(app, data, interval)
        finally:
            app.close()
            release(kind, Path(tmp))


def long_course(app: Coursebook, clock: FixedClock, sessions: int) -> None:
    run(app, clock, [], batch=False)
    for n in range(sessions):
        clock.advance(dt.timedelta(days=1))
        app.execute({"command": "pause_course", "command_id": f"pause-{n}",
                     "at": clock.now().isoformat(), "actor": "dr-ada", "course_id": "C1",
                     "reason": "holiday"})
        app.execute({"command": "resume_course", "command_id": f"resume-{n}",
                     "at": clock.now().isoformat(), "actor": "dr-ada", "course_id": "C1"})


@pytest.mark.parametrize("kind", params(PERSISTENT_KINDS))
def test_snapshots_hold_personal_data_only_encrypted_and_shredding_covers_them(
        kind: str, tmp_path: Path) -> None:
    clock = FixedClock(START)
    app = snapshotting(make_app(kind, tmp_path, clock), 2)
    try:
        app.execute({"command": "open_course", "command_id": "o", "at": START.isoformat(),
                     "actor": "admin", "course_id": "C9", "patient_ref": "P-9",
                     "indication": "cellulite", "patient": {**PATIENT, "name": SECRET}})
        long_course(app, clock, 3)
        clock.advance(dt.timedelta(days=1))
        app.execute({"command": "pause_course", "command_id": "p9",
                     "at": clock.now().isoformat(), "actor": "dr-ada", "course_id": "C9",
                     "reason": "holiday"})
        assert app.get_course("C9", version=2)["patient"]["name"] == SECRET
        rows = app.snapshots.recorder.select_events(course_uuid("C9"))  # type: ignore
        assert rows
        assert all(SECRET.encode() not in bytes(r.state) for r in rows)
        app.erase_patient(command_id="e", at=clock.now(), actor="dr-ada",
                          patient_ref="P-9", reason="asked")
        for when in ({}, {"version": 2}, {"as_of": clock.now()}, {"known_at": clock.now()}):
            assert app.get_course("C9", **when)["patient"] == "[erased]"
    finally:
        app.close()
        release(kind, tmp_path)


@pytest.mark.parametrize("kind", params(PERSISTENT_KINDS))
def test_a_snapshot_whose_tag_does_not_match_is_ignored(kind: str, tmp_path: Path) -> None:
    clock = FixedClock(START)
    app = snapshotting(make_app(kind, tmp_path, clock), 2)
    try:
        long_course(app, clock, 3)
        expected = app.get_course("C1")
        recorder: Any = app.snapshots.recorder  # type: ignore[union-attr]
        newest = recorder.select_events(course_uuid("C1"), desc=True, limit=1)[0]
        forged = bytes(newest.state).replace(b'"paused"', b'"active"')
        forged = forged.replace(b'"active"', b'"completed"', 1)
        assert forged != bytes(newest.state)
        assert app.snapshots is not None
        assert app.snapshots.decode(newest) is not None
        tampered = StoredEvent(newest.originator_id, newest.originator_version,
                               newest.topic, forged)
        assert app.snapshots.decode(tampered) is None
        p = "?" if kind == "sqlite" else "%s"
        with recorder.datastore.transaction(commit=True) as c:
            c.execute(f"UPDATE {recorder.events_table_name} SET state={p} "
                      f"WHERE originator_id={p} AND originator_version={p}",
                      (forged, newest.originator_id.hex if kind == "sqlite"
                       else newest.originator_id, newest.originator_version))
        stored = recorder.select_events(course_uuid("C1"), desc=True, limit=1)[0]
        assert bytes(stored.state) == forged
        assert app.get_course("C1") == expected
        assert app.get_course("C1", known_at=clock.now()) == expected
    finally:
        app.close()
        release(kind, tmp_path)


def test_a_store_made_before_snapshots_opens_and_answers(tmp_path: Path) -> None:
    clock = FixedClock(START)
    app = make_app("sqlite", tmp_path, clock)
    long_course(app, clock, 2)
    expected = app.get_course("C1")
    app.close()
    import sqlite3

    with sqlite3.connect(target("sqlite", tmp_path)) as conn:
        conn.execute("DROP TABLE stored_snapshots")
    from coursebook.bootstrap import open_store

    again = open_store(target("sqlite", tmp_path), clock=clock)
    try:
        assert again.get_course("C1") == expected
    finally:
        again.close()


@pytest.mark.parametrize("kind", params(PERSISTENT_KINDS))
def test_as_of_skips_only_segments_whose_intact_floor_is_later(
        kind: str, tmp_path: Path) -> None:
    """A back-dated fact recorded late sits in a later snapshot's segment: that segment
    is read, never skipped; a floor forged later (tag broken) is not believed."""
    from coursebook.adapters.storage.snapshots import snapshot_segment
    from tests.builders import Clinic

    clock = FixedClock(START)
    app = snapshotting(make_app(kind, tmp_path, clock), 2)
    try:
        long_course(app, clock, 4)
        early = START + dt.timedelta(minutes=5)
        Clinic(app, staff=False).consult("C1", at=early.isoformat(), consent=True)
        app.execute({"command": "pause_course", "command_id": "late-pause",
                     "at": (clock.now() + dt.timedelta(days=1)).isoformat(),
                     "actor": "dr-ada", "course_id": "C1", "reason": "holiday"})
        as_of = early + dt.timedelta(minutes=1)
        expected = plain(app, "C1", as_of=as_of)
        assert fold_course(app.course_reader, course_uuid("C1"), as_of=as_of)[0] == expected
        recorder: Any = app.snapshots.recorder  # type: ignore[union-attr]
        rows = recorder.select_events(course_uuid("C1"))
        floors = [snapshot_segment(bytes(r.state)) for r in rows]
        assert all(f is not None for f in floors)
        holding = [r for r, f in zip(rows, floors, strict=True)
                   if f is not None and f[1] <= as_of and r.originator_version > 2]
        assert holding  # the back-dated consultation's segment
        row = holding[-1]
        forged = bytes(row.state).replace(early.isoformat().encode(),
                                          b"2999-01-01T00:00:00+00:00", 1)
        assert forged != bytes(row.state)
        p = "?" if kind == "sqlite" else "%s"
        with recorder.datastore.transaction(commit=True) as c:
            c.execute(f"UPDATE {recorder.events_table_name} SET state={p} "
                      f"WHERE originator_id={p} AND originator_version={p}",
                      (forged, row.originator_id.hex if kind == "sqlite"
                       else row.originator_id, row.originator_version))
        assert fold_course(app.course_reader, course_uuid("C1"), as_of=as_of)[0] == expected
    finally:
        app.close()
        release(kind, tmp_path)
