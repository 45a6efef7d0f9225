"""`calendar`, `audit` and `projections` from the command line, in separate processes.

Includes the crash test: a worker killed with SIGKILL in the middle of its catch-up and
started again leaves the views exactly as a rebuild from zero.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from coursebook.bootstrap import open_store
from coursebook.service import read_models
from tests.e2e.test_cli import CLI, COURSE, PRODUCT, SCREENING, cmd, coursebook, jsonl
from tests.pg import postgres_database


def json_of(result: subprocess.CompletedProcess[bytes]) -> Any:
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def make_store(path: Path, *commands: dict[str, Any]) -> Path:
    assert coursebook("init", "--timezone", "Europe/Paris", "--catalogue", "default@1",
                      db=path).returncode == 0
    source = path.with_suffix(".jsonl")
    source.write_bytes(jsonl(*COURSE, *commands))
    assert coursebook("import", str(source), db=path).returncode == 0
    return path


def run_import(db: Path, *commands: dict[str, Any]) -> None:
    source = db.with_name("more.jsonl")
    source.write_bytes(jsonl(*commands))
    result = coursebook("import", str(source), db=db)
    assert result.returncode == 0, result.stdout


SCHEDULE = cmd("schedule_session", 10, "2024-03-06T09:00:00+01:00", course_id="C1",
               planned_at="2024-03-20T10:30:00+01:00", practitioner_id="dr-ada")
RESCHEDULE = cmd("reschedule_session", 11, "2024-03-07T09:00:00+01:00", course_id="C1",
                 session_no=2, planned_at="2024-03-22T15:00:00+01:00",
                 reason="patient asked for a later day")
SEVERE = cmd("report_reaction", 12, "2024-03-06T10:00:00+01:00", course_id="C1",
             session_no=1, kind="swelling", severity=3, notes="Swollen left cheek")


class TestCalendar:
    def test_lists_the_next_session_with_its_window_and_filters_by_local_date(
            self, tmp_path: Path) -> None:
        db = make_store(tmp_path / "s.db", SCHEDULE)
        [entry] = json_of(coursebook("--format", "json", "calendar", db=db))
        assert entry == {"session_no": 2, "earliest": "2024-03-19", "target": "2024-03-26",
                         "latest": "2024-04-02", "planned_at": "2024-03-20T09:30:00Z",
                         "course_id": "C1", "patient_ref": "P1", "practitioner_id": "dr-ada",
                         "cautions": [], "blocked_by": [],
                         "screening_valid_until": None, "follow_up": None}
        assert json_of(coursebook("--format", "json", "calendar", "--from", "2024-03-21",
                                  db=db)) == []
        assert len(json_of(coursebook("--format", "json", "calendar", "--from",
                                      "2024-03-20", "--to", "2024-03-20", db=db))) == 1

    def test_ics_re_export_keeps_the_uids_and_moves_the_event(self, tmp_path: Path) -> None:
        db = make_store(tmp_path / "s.db", SCHEDULE)
        first, second = tmp_path / "a.ics", tmp_path / "b.ics"
        assert coursebook("calendar", "--all", "--ics", str(first), db=db).returncode == 0
        run_import(db, RESCHEDULE)
        assert coursebook("calendar", "--all", "--ics", str(second), db=db).returncode == 0
        a, b = first.read_text(), second.read_text()
        uid = re.search(r"UID:C1\.session-2\.[0-9a-f]{16}@coursebook", a)
        assert uid is not None
        assert uid.group(0) in b
        assert a.count("BEGIN:VEVENT") == b.count("BEGIN:VEVENT") == 1
        assert "DTSTART;TZID=Europe/Paris:20240320T103000" in a
        assert "DTSTART;TZID=Europe/Paris:20240322T150000" in b

    def test_ics_marks_blocked_entries_and_holds_no_personal_data(
            self, tmp_path: Path) -> None:
        db = make_store(tmp_path / "s.db", SEVERE)
        out = tmp_path / "c.ics"
        assert coursebook("calendar", "--all", "--ics", str(out), db=db).returncode == 0
        text = out.read_text()
        assert "SUMMARY:BLOCKED: REACTION_UNREVIEWED - C1: session 2" in text
        assert "STATUS:TENTATIVE" in text
        assert "DTSTART;VALUE=DATE:20240326" in text  # unplanned: all day, target date
        assert "Odile" not in text
        assert "cheek" not in text

    def test_a_bad_date_is_a_usage_error(self, tmp_path: Path) -> None:
        db = make_store(tmp_path / "s.db")
        assert coursebook("calendar", "--from", "20-03-2024", db=db).returncode == 2


class TestAudit:
    def test_every_fact_in_recording_order_with_who_when_and_why(
            self, tmp_path: Path) -> None:
        db = make_store(tmp_path / "s.db", cmd(
            "give_session", 13, "2024-03-08T10:00:00+01:00", course_id="C1",
            products=[PRODUCT], areas=["face"], dose_ml=1, anaesthetic=None,
            spacing_override_reason="wedding next week, physician agrees"))
        trail = json_of(coursebook("--format", "json", "audit", db=db))
        assert [t["position"] for t in trail] == sorted(t["position"] for t in trail)
        assert set(trail[0]) >= {"position", "recorded_at", "at", "subject", "event",
                                 "actor", "reason"}
        course = json_of(coursebook("--format", "json", "audit", "--course", "C1", db=db))
        assert [t["event"] for t in course] == ["Opened", "ConsultationRecorded",
                                                "SessionGiven", "SessionGiven"]
        second = course[3]
        assert second["reason"] == "wedding next week, physician agrees"
        assert second["at"] == "2024-03-08T09:00:00Z"
        assert second["detail"]["gap_days"] == 3
        assert second["detail"]["rule"]["min_days"] > 3
        assert second["detail"]["rules_version"].startswith("coursebook-rules/")
        assert "Odile" not in str(trail)

    def test_csv_has_a_header_and_one_row_per_event(self, tmp_path: Path) -> None:
        db = make_store(tmp_path / "s.db")
        out = tmp_path / "audit.csv"
        result = coursebook("audit", "--course", "C1", "--csv", str(out), db=db)
        assert result.returncode == 0
        lines = out.read_text().splitlines()
        assert lines[0] == "position,recorded_at,at,subject,event,actor,reason,detail"
        assert len(lines) == 1 + 3


class TestProjections:
    def test_status_shows_each_view_at_the_head_after_an_import(
            self, tmp_path: Path) -> None:
        db = make_store(tmp_path / "s.db")
        status = json_of(coursebook("--format", "json", "projections", "status", db=db))
        assert {s["name"] for s in status} == {"calendar", "audit", "recall", "compliance"}
        assert all(s["up_to_date"] and s["pending"] == 0 for s in status)

    def test_rebuild_from_zero_reports_the_events_it_processed(self, tmp_path: Path) -> None:
        db = make_store(tmp_path / "s.db")
        before = json_of(coursebook("--format", "json", "audit", db=db))
        rebuilt = json_of(coursebook("--format", "json", "projections", "rebuild", db=db))
        assert [r["name"] for r in rebuilt["rebuilt"]] == ["calendar", "audit", "recall",
                                                           "compliance"]
        assert all(r["events"] > 0 for r in rebuilt["rebuilt"])
        assert json_of(coursebook("--format", "json", "audit", db=db)) == before
        one = json_of(coursebook("--format", "json", "projections", "rebuild", "audit",
                                 db=db))
        assert [r["name"] for r in one["rebuilt"]] == ["audit"]
        assert coursebook("projections", "rebuild", "nope", db=db).returncode == 2

    def test_a_missing_store_exits_4(self, tmp_path: Path) -> None:
        for args in (["calendar"], ["audit"], ["projections", "status"]):
            assert coursebook(*args, db=tmp_path / "none.db").returncode == 4


# -- workers --------------------------------------------------------------------------
def start_worker(db: Path | str, page_size: int = 1000) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "COURSEBOOK_DB"}
    env["COURSEBOOK_VIEW_PAGE_SIZE"] = str(page_size)
    return subprocess.Popen([*CLI, "--db", str(db), "--format", "json", "projections",
                             "run", "--poll", "0.05"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def positions(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT view, position FROM projection_tracking").fetchall())


def snapshot(app: Any) -> dict[str, Any]:
    out = {}
    for name, runner in read_models.runners(app).items():
        out[name] = (runner.view.query(f"SELECT * FROM {runner.projection.tables[0]} "
                                       "ORDER BY 1"), runner.view.position())
    return out


def record_without_catching_up(target: str, courses: int, first: int = 0) -> None:
    """Commands through the Python API, opened to leave the views to a worker (courses
    numbered from `first`)."""
    app = open_store(target, views="worker")
    try:
        for n in range(first, first + courses):
            for i, body in enumerate([
                    cmd("open_course", 0, "2024-04-01T09:00:00+02:00", actor="admin",
                        course_id=f"K{n}", patient_ref=f"PK{n}",
                        indication="skin_rejuvenation"),
                    cmd("record_consultation", 0, "2024-04-01T10:00:00+02:00",
                        course_id=f"K{n}", consent=True, screening=SCREENING),
                    cmd("give_session", 0, "2024-04-02T10:00:00+02:00", course_id=f"K{n}",
                        products=[PRODUCT], areas=["face"], dose_ml=1, anaesthetic=None)]):
                app.execute({**body, "command_id": f"k-{n}-{i}"})
    finally:
        app.close()


def wait_for(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class TestWorker:
    def test_follows_new_events_and_stops_cleanly_on_sigterm(self, tmp_path: Path) -> None:
        db = make_store(tmp_path / "s.db")
        worker = start_worker(db)
        try:
            record_without_catching_up(str(db), 3)
            app = open_store(str(db))
            try:
                head = app.recorder.max_notification_id()
                wait_for(lambda: positions(db)["audit"] >= head - 1)  # last: a receipt
            finally:
                app.close()
        finally:
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=30)
        assert worker.returncode == 0, err.decode()
        document = json.loads(out)
        assert document["stopped"] is True
        assert document["processed"] > 0

    def test_killed_mid_run_and_restarted_leaves_the_views_as_a_rebuild(
            self, tmp_path: Path) -> None:
        db = make_store(tmp_path / "s.db")
        app = open_store(str(db))
        try:
            for attempt in range(5):  # a fast machine may finish first: more, kill again
                record_without_catching_up(str(db), 40, first=40 * attempt)
                head = app.recorder.max_notification_id()
                start = positions(db)["audit"]
                worker = start_worker(db, page_size=2)
                try:
                    wait_for(lambda start=start: positions(db)["audit"] > start + 20)
                finally:
                    worker.send_signal(signal.SIGKILL)
                    worker.communicate(timeout=30)
                if positions(db)["audit"] < head - 1:
                    break
            else:
                pytest.fail("the worker was never killed mid-run")
            worker = start_worker(db, page_size=7)
            wait_for(lambda: min(positions(db).values()) >= head - 1)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
            live = snapshot(app)
            read_models.rebuild(app)
            assert snapshot(app) == live
        finally:
            app.close()


@pytest.mark.postgres
def test_a_worker_on_postgresql_follows_new_events_through_the_subscription(
        tmp_path: Path) -> None:
    with postgres_database() as url:
        assert coursebook("init", "--timezone", "Europe/Paris", db=url).returncode == 0
        source = tmp_path / "course.jsonl"
        source.write_bytes(jsonl(*COURSE))
        assert coursebook("import", str(source), db=url).returncode == 0
        worker = start_worker(url)
        try:
            record_without_catching_up(url, 2)
            app = open_store(url)
            try:
                runner = read_models.runners(app)["audit"]
                head = app.recorder.max_notification_id()
                wait_for(lambda: runner.view.position() >= head - 1)
            finally:
                app.close()
        finally:
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=30)
        assert worker.returncode == 0, err.decode()
        assert json.loads(out)["mode"] == "subscription"
