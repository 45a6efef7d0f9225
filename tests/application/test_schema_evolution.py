"""Stores that live for decades (docs/schema-evolution.md): how stored records are read
by code written years later.

- `upgrade` brings a stored body to its class's version by its upcasters, in order, and
  refuses a version it does not know (`NewerRecord`);
- there is no other way in: every read path, fed a record written by a newer coursebook
  (a `class_version` above its class's, with a valid tag), fails loudly instead of
  reading it wrongly, down to the command line (exit 4);
- a class renamed keeps answering to its old topic (`domain.topics.renamed`), on every
  read path, the views included.

The stores here are SQLite files, whose rows a test can rewrite as an older or newer
coursebook would have written them; tags are recomputed with the store's integrity key,
so only the version (or the topic) differs from what this code writes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import eventsourcing.utils
import orjson
import pytest
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.utils import get_topic

from coursebook.adapters.storage.integrity import TAG_LEN, event_tag
from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock
from coursebook.domain.course import TreatmentCourse
from coursebook.domain.patient import PatientRecord
from coursebook.domain.schema import NewerRecord, UnknownRecord, upcasters, upgrade
from coursebook.domain.topics import LEGACY_TOPICS, renamed, topics_of
from coursebook.errors import StoreUnavailable
from coursebook.service.application import Coursebook
from tests.builders import Clinic, day
from tests.stores import make_app

SESSION_GIVEN = get_topic(TreatmentCourse.SessionGiven)
OLD_SESSION_GIVEN = "coursebook.domain.treatment:TreatmentCourse.SessionGiven"
"""A topic no coursebook ever wrote: the name SessionGiven had in a module since renamed."""
AS_OF = "2026-11-01T12:00:00+00:00"


# -- stores to rewrite -----------------------------------------------------------------------
def build_clinic(app: Coursebook, clock: FixedClock) -> None:
    """Two courses: C1 with two sessions, a reaction and a booking; C2 with one session.
    Recorded an hour apart each, so that `known_at` has moments to choose from."""
    clinic = Clinic(app)
    steps: list[Callable[[], Any]] = [
        lambda: clinic.ready("C1"),
        lambda: clinic.give("C1", at=day(1)),
        lambda: clinic.give("C1", at=day(22)),
        lambda: clinic.react("C1", session_no=2, severity=2, at=day(23)),
        lambda: clinic.schedule("C1", at=day(23, 10), planned_at=day(43)),
        lambda: clinic.ready("C2", patient_ref="P2"),
        lambda: clinic.give("C2", at=day(2)),
    ]
    for step in steps:
        step()
        clock.advance(dt.timedelta(hours=1))


@pytest.fixture
def store(tmp_path: Path, clock: FixedClock) -> Path:
    """A SQLite store (closed) holding `build_clinic`, its views caught up."""
    app = make_app("sqlite", tmp_path, clock)
    build_clinic(app, clock)
    app.close()
    return tmp_path / "store.db"


def reopen(path: Path, clock: FixedClock) -> Coursebook:
    return open_store(str(path), clock=clock)


Rewrite = Callable[[str, dict[str, Any]], tuple[str, dict[str, Any]] | None]


def rewrite(path: Path, key: bytes, change: Rewrite, *, limit: int | None = None) -> int:
    """Rewrites stored event rows in place as another coursebook would have written them:
    `change(topic, body)` returns the new (topic, raw JSON body) or None to leave the row.
    Each rewritten row gets a valid tag for its new content. Returns how many changed."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT rowid, originator_id, originator_version, topic, state "
                            "FROM stored_events ORDER BY rowid").fetchall()
        changed = 0
        for rowid, originator_id, version, topic, state in rows:
            if limit is not None and changed >= limit:
                break
            found = change(topic, orjson.loads(bytes(state)[:-TAG_LEN]))
            if found is None:
                continue
            new_topic, body = found
            payload = orjson.dumps(body)
            tag = event_tag(key, originator_id, version, new_topic, payload)
            conn.execute("UPDATE stored_events SET topic = ?, state = ? WHERE rowid = ?",
                         (new_topic, payload + tag, rowid))
            changed += 1
        conn.commit()
    finally:
        conn.close()
    return changed


def integrity_key(path: Path, clock: FixedClock) -> bytes:
    app = reopen(path, clock)
    try:
        return app.integrity_key
    finally:
        app.close()


def answers(app: Coursebook) -> dict[str, Any]:
    """Everything a clinic and a reviewer can ask of the two courses."""
    return {
        "C1": app.get_course("C1"), "C2": app.get_course("C2"),
        "C1 as of": app.get_course("C1", as_of=day(22, 12)),
        "C1 known at": app.get_course("C1", known_at="2026-11-01T15:30:00+00:00"),
        "C1 version 3": app.get_course("C1", version=3),
        "history C1": app.get_history("C1"), "history C2": app.get_history("C2"),
        "calendar": app.calendar(), "audit": app.audit(), "audit C1": app.audit("C1"),
        "compliance": app.compliance(as_of=AS_OF),
        "recall": app.recall("LOT-1", as_of=AS_OF),
    }


# -- upgrade ---------------------------------------------------------------------------------
def test_a_version_1_session_is_brought_to_version_2_with_its_values_named() -> None:
    body = {"session_no": 2, "rule": {"_type_": "spacing_rule", "_data_": [14, 21, 28, ""]},
            "products": [{"_type_": "product", "_data_": ["HA", "L-1", "2027-01-31"]},
                         {"_type_": "product", "_data_": ["Lido", "L-2", "2028-02-29"]}],
            "overrides": [], "gap_days": 21}

    upgrade(TreatmentCourse.SessionGiven, SESSION_GIVEN, body)

    assert body == {
        "session_no": 2, "gap_days": 21, "overrides": [],
        "rule": {"_type_": "spacing_rule", "_data_": {
            "min_days": 14, "target_days": 21, "max_days": 28, "source": ""}},
        "products": [
            {"_type_": "product", "_data_": {"name": "HA", "lot": "L-1",
                                             "expires_on": "2027-01-31"}},
            {"_type_": "product", "_data_": {"name": "Lido", "lot": "L-2",
                                             "expires_on": "2028-02-29"}}],
        "aftercare": None}  # version 2 -> 3: no aftercare was recorded then


def test_a_body_at_the_current_version_is_left_as_it_is_but_for_its_version() -> None:
    rule = {"_type_": "spacing_rule", "_data_": {"min_days": 1, "target_days": 2,
                                                 "max_days": 3, "source": "x"}}
    body = {"class_version": 3, "rule": dict(rule), "aftercare": "AC-1"}
    assert upgrade(TreatmentCourse.SessionGiven, SESSION_GIVEN, body) == {
        "rule": rule, "aftercare": "AC-1"}


def test_a_version_2_session_gains_aftercare_none_and_keeps_the_rest() -> None:
    body = {"class_version": 2, "session_no": 3, "gap_days": 14}
    assert upgrade(TreatmentCourse.SessionGiven, SESSION_GIVEN, body) == {
        "session_no": 3, "gap_days": 14, "aftercare": None}


def test_a_version_2_opening_is_under_default_1_with_no_safety_parameter() -> None:
    from coursebook.domain.protocols import shipped_catalogue

    body = {"class_version": 2, "course_id": "C1"}
    upgrade(TreatmentCourse.Opened, "x:TreatmentCourse.Opened", body)
    default_1 = shipped_catalogue("default@1")
    assert default_1 is not None
    assert body == {"course_id": "C1", "catalogue": default_1.identity(), "safety": {}}


def test_a_version_2_consultation_put_nothing_in_force_from_its_medications() -> None:
    body = {"class_version": 2, "relative": ["DIABETES"]}
    upgrade(TreatmentCourse.ConsultationRecorded, "x:ConsultationRecorded", body)
    assert body == {"relative": ["DIABETES"], "from_medications": []}


@pytest.mark.parametrize("version", [4, 99, 0, -1, "2", 2.0, True, None])
def test_a_version_this_code_does_not_know_is_refused(version: Any) -> None:
    body = {"class_version": version, "session_no": 1}
    with pytest.raises(NewerRecord, match="newer coursebook") as info:
        upgrade(TreatmentCourse.SessionGiven, SESSION_GIVEN, body)
    assert info.value.known == 3
    assert info.value.stored == (version if type(version) is int else 0)


class Tracked:
    """A test-only event class at version 3 whose upcasters note the order they ran."""

    class_version = 3

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["ran"].append("v1->v2")
        state["amount"] = {"value": state.pop("amount"), "unit": "ml"}

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        state["ran"].append("v2->v3")
        state["amount"]["value"] = round(state["amount"]["value"] * 1000)
        state["amount"]["unit"] = "µl"


@pytest.mark.parametrize(("stored", "ran", "upcasted"), [
    ({"ran": [], "amount": 1.5}, ["v1->v2", "v2->v3"], ["upcast_v1_v2", "upcast_v2_v3"]),
    ({"class_version": 1, "ran": [], "amount": 1.5}, ["v1->v2", "v2->v3"],
     ["upcast_v1_v2", "upcast_v2_v3"]),
    ({"class_version": 2, "ran": [], "amount": {"value": 1.5, "unit": "ml"}}, ["v2->v3"],
     ["upcast_v2_v3"]),
    ({"class_version": 3, "ran": [], "amount": {"value": 1500, "unit": "µl"}}, [], []),
])
def test_upcasters_run_in_order_from_the_stored_version_to_the_current_one(
        stored: dict[str, Any], ran: list[str], upcasted: list[str]) -> None:
    assert upcasters(Tracked, stored.get("class_version", 1)) == upcasted
    assert upgrade(Tracked, "tests:Tracked", stored) == {
        "ran": ran, "amount": {"value": 1500, "unit": "µl"}}


def test_a_class_that_never_changed_reads_only_version_1() -> None:
    erased = get_topic(PatientRecord.Erased)
    assert upgrade(PatientRecord.Erased, erased, {"x": 1}) == {"x": 1}
    with pytest.raises(NewerRecord):
        upgrade(PatientRecord.Erased, erased, {"class_version": 2})


# -- renames -----------------------------------------------------------------------------------
@contextmanager
def old_name(topic: str = OLD_SESSION_GIVEN,
             cls: type = TreatmentCourse.SessionGiven) -> Iterator[str]:
    """`topic` registered as an old name of `cls` while the block runs (a real rename
    registers it for good, in `domain/topics.py`'s way)."""
    renamed(topic, cls)
    try:
        yield topic
    finally:
        LEGACY_TOPICS.pop(topic)
        eventsourcing.utils._topic_cache.pop(topic)  # the library has no API to forget


@pytest.fixture
def old_topic() -> Iterator[str]:
    with old_name() as topic:
        yield topic


def to_topic(topic: str) -> Rewrite:
    def change(stored: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        return (topic, body) if stored == SESSION_GIVEN else None
    return change


def test_a_renamed_class_answers_to_its_old_topics() -> None:
    assert topics_of(TreatmentCourse.SessionGiven) == [SESSION_GIVEN]
    with old_name():
        assert topics_of(TreatmentCourse.SessionGiven) == [SESSION_GIVEN, OLD_SESSION_GIVEN]
        assert eventsourcing.utils.resolve_topic(OLD_SESSION_GIVEN) \
            is TreatmentCourse.SessionGiven
    assert topics_of(TreatmentCourse.SessionGiven) == [SESSION_GIVEN]


def test_an_aggregate_or_module_renamed_takes_its_events_old_names_with_it() -> None:
    import coursebook.domain.course as course_module

    olds = {"coursebook.domain.courses:Course": TreatmentCourse,
            "coursebook.domain.treatment": course_module}
    for old, new in olds.items():
        renamed(old, new)
    try:
        assert topics_of(TreatmentCourse.Paused) == [
            get_topic(TreatmentCourse.Paused), "coursebook.domain.courses:Course.Paused",
            "coursebook.domain.treatment:TreatmentCourse.Paused"]
    finally:
        for old in olds:
            LEGACY_TOPICS.pop(old)
            eventsourcing.utils._topic_cache.pop(old)
            eventsourcing.utils._topic_cache.pop(f"{old}.Paused", None)
            eventsourcing.utils._topic_cache.pop(f"{old}:TreatmentCourse.Paused", None)


def test_the_store_records_old_module_is_registered_the_same_way() -> None:
    from coursebook.domain.store_records import ClinicSettings

    old = "coursebook.domain.bookkeeping:ClinicSettings"
    assert LEGACY_TOPICS[old] is ClinicSettings
    assert topics_of(ClinicSettings.Configured) == [f"{old}.Configured"]  # pinned: one name


def test_events_stored_under_an_old_topic_read_the_same_on_every_path(
        store: Path, clock: FixedClock, old_topic: str) -> None:
    app = reopen(store, clock)
    before = answers(app)
    key = app.integrity_key
    app.close()

    assert rewrite(store, key, to_topic(old_topic)) == 3
    app = reopen(store, clock)
    try:
        assert {n.topic for n in app.recorder.select_notifications(1, 1000)} >= {old_topic}
        assert SESSION_GIVEN not in {n.topic for n in app.recorder.select_notifications(
            1, 1000)}
        app.rebuild_views()  # the views read every row again, under their old topic
        after = answers(app)
    finally:
        app.close()
    assert after == before
    assert [e["event"] for e in after["audit C1"]].count("SessionGiven") == 2


def test_views_catching_up_on_old_topics_see_them(
        store: Path, clock: FixedClock, old_topic: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only a rebuild: views that have not seen the events yet read them page by
    page (3 notifications a page here) as they are caught up."""
    app = reopen(store, clock)
    before = app.calendar(), app.audit(), app.recall("LOT-1"), app.compliance()
    key = app.integrity_key
    app.close()
    rewrite(store, key, to_topic(old_topic))
    conn = sqlite3.connect(store)
    conn.execute("UPDATE projection_tracking SET position = 0")
    conn.execute("DELETE FROM view_calendar")
    conn.execute("DELETE FROM view_audit")
    conn.execute("DELETE FROM view_recall")
    conn.execute("DELETE FROM view_recall_erased")
    for table in ("view_compliance", "view_compliance_erased", "view_compliance_practitioners"):
        conn.execute(f"DELETE FROM {table}")
    conn.commit()
    conn.close()
    monkeypatch.setenv("COURSEBOOK_VIEW_PAGE_SIZE", "3")
    app = reopen(store, clock)
    try:
        assert all(status["pending"] > 0 for status in app.views_status())
        assert (app.calendar(), app.audit(), app.recall("LOT-1"), app.compliance()) == before
        assert before[2]["sessions"]
        assert all(status["up_to_date"] for status in app.views_status())
    finally:
        app.close()


def test_a_topic_nobody_registered_fails_loudly_where_the_course_is_read(
        store: Path, clock: FixedClock) -> None:
    """Read through the mapper (a course, its history, time travel): refused. The views
    and the compliance report select the topics they know and never see such a row;
    `migrate --check` names it (docs/schema-evolution.md, "Limits")."""
    key = integrity_key(store, clock)
    rewrite(store, key, to_topic("coursebook.domain.nowhere:TreatmentCourse.SessionGiven"))
    app = reopen(store, clock)
    try:
        for read in (lambda: app.get_course("C1"), lambda: app.get_history("C1"),
                     lambda: app.get_course("C1", as_of=day(30))):
            with pytest.raises(UnknownRecord, match="newer coursebook"):
                read()
    finally:
        app.close()


# -- no other way in -------------------------------------------------------------------------
def to_version(version: Any, topic: str = SESSION_GIVEN) -> Rewrite:
    """The first stored event of `topic` rewritten as stored at `version`."""
    def change(stored: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        return (stored, {**body, "class_version": version}) if stored == topic else None
    return change


@pytest.fixture
def newer(store: Path, clock: FixedClock) -> Path:
    """The store, with C1's first session rewritten as a coursebook that knows
    SessionGiven at version 99 would have stored it (its tag valid)."""
    assert rewrite(store, integrity_key(store, clock), to_version(99), limit=1) == 1
    return store


def newer_row(app: Coursebook) -> Any:
    found = [n for n in app.recorder.select_notifications(1, 1000)
             if n.topic == SESSION_GIVEN
             and orjson.loads(n.state[:-TAG_LEN]).get("class_version") == 99]
    assert len(found) == 1
    return found[0]


def as_row(notification: Any) -> tuple[int, Any, int, str, bytes]:
    n = notification
    return (n.id, n.originator_id, n.originator_version, n.topic, n.state)


def test_the_mapper_refuses_a_newer_record(newer: Path, clock: FixedClock) -> None:
    app = reopen(newer, clock)
    try:
        row = newer_row(app)
        with pytest.raises(NewerRecord, match="SessionGiven is of version 99") as info:
            app.mapper.to_domain_event(row)
        assert (info.value.stored, info.value.known) == (99, 3)
        assert isinstance(info.value, StoreUnavailable)
    finally:
        app.close()


def test_the_views_decoder_and_both_views_refuse_a_newer_record(
        newer: Path, clock: FixedClock) -> None:
    from coursebook.adapters.storage.view_recorders import raw_decoder
    from coursebook.service import read_models

    app = reopen(newer, clock)
    try:
        row = newer_row(app)
        with pytest.raises(NewerRecord):
            raw_decoder(app)(row.topic, row.state)
        views = read_models.runners(app)
        calendar: Any = views["calendar"].projection
        with pytest.raises(NewerRecord):
            calendar._event(row.topic, row.state)
        for name in ("calendar", "audit", "recall", "compliance"):
            with pytest.raises(NewerRecord):
                views[name].projection.page([as_row(row)])
    finally:
        app.close()


def test_time_travel_refuses_a_newer_record_it_only_peeks_at(
        newer: Path, clock: FixedClock) -> None:
    from coursebook.adapters.storage.time_travel import _selector, fold_course
    from coursebook.domain.ids import course_uuid

    app = reopen(newer, clock)
    try:
        row = newer_row(app)
        for as_of, known_at in ((dt.datetime.fromisoformat(day(30)), None),
                                (None, clock.now()),
                                (dt.datetime.fromisoformat(day(30)), clock.now())):
            peek = _selector(app.course_reader, as_of, known_at)
            assert peek is not None
            with pytest.raises(NewerRecord):
                peek(row)
            with pytest.raises(NewerRecord):
                fold_course(app.course_reader, course_uuid("C1"), as_of=as_of,
                            known_at=known_at)
    finally:
        app.close()


def test_the_compliance_read_refuses_a_newer_record(newer: Path, clock: FixedClock) -> None:
    from coursebook.adapters.storage.report_reads import read_report_events
    from coursebook.projections.compliance import report_topics

    app = reopen(newer, clock)
    try:
        with pytest.raises(NewerRecord):
            list(read_report_events(app.recorder, app.mapper, report_topics()))
        with pytest.raises(NewerRecord):
            app.compliance(as_of=AS_OF)
    finally:
        app.close()


def test_no_question_about_the_store_reads_a_newer_record(
        newer: Path, clock: FixedClock) -> None:
    app = reopen(newer, clock)
    try:
        questions: dict[str, Callable[[], Any]] = {
            "course": lambda: app.get_course("C1"),
            "course version 3": lambda: app.get_course("C1", version=3),
            "course as of": lambda: app.get_course("C1", as_of=day(30)),
            "course known at": lambda: app.get_course("C1", known_at=AS_OF),
            "history": lambda: app.get_history("C1"),
            "compliance": lambda: app.compliance(as_of=AS_OF),
            "rebuild": app.rebuild_views,
            "audit": app.audit, "calendar": app.calendar,
        }
        for name, ask in questions.items():
            with pytest.raises(NewerRecord, match="newer coursebook"):
                print(name, ask())  # what it answered, should it answer
        assert app.get_course("C2")["sessions_given"] == 1  # the rest of the store reads
    finally:
        app.close()


def test_the_command_line_refuses_a_newer_record_with_exit_4(newer: Path) -> None:
    """The views hold what they read before the row was rewritten behind their back;
    rebuilt, they meet it (and stay refused until a coursebook that reads it comes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSEBOOK_")}
    for args in (["course", "show", "C1"], ["course", "show", "C1", "--as-of", AS_OF],
                 ["course", "history", "C1"], ["compliance", "--as-of", AS_OF],
                 ["projections", "rebuild", "audit"], ["audit"],
                 ["projections", "rebuild", "calendar"], ["calendar"]):
        result = subprocess.run([sys.executable, "-m", "coursebook", "--db", str(newer),
                                 *args], capture_output=True, env=env, cwd=newer.parent,
                                timeout=60, check=False)
        stderr = result.stderr.decode()
        assert result.returncode == 4, (args, stderr)
        assert "written by a newer coursebook" in stderr, (args, stderr)
        assert "Traceback" not in stderr
        assert result.stdout == b""


def test_a_snapshot_written_by_a_newer_coursebook_is_ignored(
        store: Path, clock: FixedClock) -> None:
    from coursebook.adapters.storage.snapshots import NEWER
    from coursebook.domain.ids import course_uuid

    app = reopen(store, clock)
    try:
        expected = app.get_course("C1")
        app.take_snapshot(course_uuid("C1"))
        assert app.snapshots is not None
        (stored,) = app.snapshots.recorder.select_events(course_uuid("C1"))
        body = orjson.loads(stored.state[:-TAG_LEN])
        body["class_version"] = 99
        payload = orjson.dumps(body)
        newer = StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                            payload + event_tag(app.integrity_key, stored.originator_id,
                                                stored.originator_version, stored.topic,
                                                payload))
        assert app.snapshots.examine(newer) == (None, NEWER)
        assert app.snapshots.delete(stored)
        app.snapshots.recorder.insert_events([newer])
        assert app.get_course("C1") == expected  # folded from the events alone
    finally:
        app.close()


# -- the worked example of docs/schema-evolution.md: the optional field `aftercare` -----------
AFTERCARE_DIFFERENCE = ("expected/audit*.json", "$[*].detail.aftercare")
"""The `ALLOWED_DIFFERENCES` entry the worked example adds to the v0.1.0 store's test."""


def test_the_worked_example_reads_the_v0_1_0_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SessionGiven version 3 (`aftercare`, domain/schema.py `no_aftercare`), for real: on
    a copy of the store v0.1.0 wrote, its 39 sessions (version 1) are read through both
    upcasters, every reader sees `aftercare` as None, and of the 302 answers v0.1.0
    recorded (all but `verify`'s) the audit trail's session details change by exactly
    the difference the worked example allows (the other differences are those the v0.1.0
    store's test allows for the other new keys)."""
    from coursebook.adapters.entrypoints.cli import cli
    from coursebook.adapters.entrypoints.cli.common import run
    from coursebook.adapters.storage.view_recorders import raw_decoder
    from tests.integration.test_v0_1_0_store import (
        ENTRIES,
        FIXTURE,
        MANIFEST,
        MASTER_KEY,
        allowed,
        copy_fixture,
        differences,
        matches,
    )
    from tests.logcapture import pristine_logging

    directory = copy_fixture(tmp_path / "store")
    store = str(directory / MANIFEST["store"])
    app = open_store(store, extra_env={"COURSEBOOK_MASTER_KEY": MASTER_KEY})
    try:
        report = app.check_migration()
        assert report["ok"]
        assert [e for e in report["events"] if e["type"] == "TreatmentCourse.SessionGiven"] \
            == [{"type": "TreatmentCourse.SessionGiven", "stored_version": 1,
                 "current_version": 3, "records": 39, "failed": 0,
                 "upcasters": ["upcast_v1_v2", "upcast_v2_v3"], "old_topics": []}]
        sessions = [e for e in app.course_events("fx-long-hair")
                    if isinstance(e, TreatmentCourse.SessionGiven)]
        assert sessions
        assert all(vars(e)["aftercare"] is None for e in sessions)  # in the body itself
        decode = raw_decoder(app)
        rows = [n for n in app.recorder.select_notifications(1, 1000)
                if n.topic == SESSION_GIVEN]
        assert len(rows) == 39
        assert all(decode(n.topic, n.state)["aftercare"] is None for n in rows)
    finally:
        app.close()

    monkeypatch.setenv("COURSEBOOK_MASTER_KEY", MASTER_KEY)
    monkeypatch.chdir(directory)
    changed = set()
    with pristine_logging():
        for entry in ENTRIES:
            if entry["args"][0] == "verify":
                continue
            out, err = io.StringIO(), io.StringIO()
            monkeypatch.setattr(sys, "argv", ["coursebook", "--db", store, "--format",
                                              "json", *entry["args"]])
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = run(cli)
            assert code == entry["exit"], (entry["args"], err.getvalue())
            expected = json.loads((FIXTURE / entry["file"]).read_text(encoding="utf-8"))
            for path in differences(expected, json.loads(out.getvalue())):
                assert allowed(entry["file"], path), (entry, path)
                if matches(AFTERCARE_DIFFERENCE[1], path):
                    assert matches(AFTERCARE_DIFFERENCE[0], entry["file"]), (entry, path)
                    changed.add(entry["file"])
    assert changed == {"expected/audit.json", "expected/audit--course=fx-skin-07.json",
                       "expected/audit--course=fx-pigm-01.json"}


def test_the_cache_sees_an_erasure_stored_under_an_old_topic() -> None:
    """Another process's erasure empties this process's aggregate cache, whichever name
    its event is stored under (`service.freshness`, wired with `topics_of`)."""
    from coursebook.service.freshness import CacheFreshness

    class Log:
        def __init__(self) -> None:
            self.topics: list[str] = []

        def max_notification_id(self) -> int:
            return len(self.topics)

        def select_notifications(self, start: int, limit: int, stop: int) -> list[Any]:
            return [Notification(id=i, originator_id=uuid.uuid4(), originator_version=1,
                                 topic=self.topics[i - 1], state=b"")
                    for i in range(start, min(stop, start + limit - 1) + 1)]

    class Cache:
        cache: dict[Any, Any] = {}

    with old_name("coursebook.domain.patients:PatientRecord.Erased",
                  PatientRecord.Erased) as old:
        log, erasures = Log(), []
        freshness = CacheFreshness(log, Cache(), erasure_topics=topics_of(PatientRecord.Erased),
                                   on_erasure=lambda: erasures.append(1))
        freshness.check()
        log.topics += [SESSION_GIVEN, old]
        freshness.check()
        app = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"})
        wired: Any = app._freshness
        app.close()
    assert erasures == [1]
    assert old in wired._erasure_topics  # the application wires every name
