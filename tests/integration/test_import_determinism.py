"""Importing is deterministic: a file imported twice, in parts, after kill -9 at random
moments, or by racing importers leaves the store one clean import leaves, and reports
what one import reports.

The file is the benchmark's synthetic clinic (`benchmarks.clinic`), with its refused
lines (too soon without a reason, unknown courses, a nurse overriding, expired lots, a
command_id reused with another body, a long maintenance course where about one session
in six is refused) and its retried duplicates. "The store one clean import leaves" is
compared as: every stored event but record times (courses, patients, practitioners,
receipts and the refusals remembered: `Ledger.digest`), every course as `course show`
gives it, the audit trail and the calendar (without record times and positions), the
compliance report, and `verify`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.clinic import END, clinic_commands, long_course
from coursebook.adapters.storage.keys import MASTER_KEY_ENV, new_master_key_text
from coursebook.adapters.storage.persistence import is_postgres
from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock
from coursebook.errors import Rejected
from coursebook.service import read_models
from coursebook.service.application import Coursebook
from tests.integration.ledger import read_ledger, views_snapshot
from tests.stores import PERSISTENT_KINDS, make_app, params, release

CLI = [sys.executable, "-m", "coursebook.adapters.entrypoints.cli"]
NOW = dt.datetime(2028, 1, 2, 12, 0, tzinfo=dt.UTC)
"""After the clinic's last fact, for the in-process imports (no line is a future fact)."""

SIZES = {"sqlite": (1200, 350), "postgres": (300, 350)}
"""(courses, events of the long course) of the clinic imported twice and in parts: the
issue's own clinic on SQLite; on PostgreSQL, where each batch is a round trip, a quarter
of its courses and the same long course."""

KILL_ROUNDS = 20
KILL_CLINIC = (40, 120)
RACE_CLINIC = KILL_CLINIC


def clinic_file(courses: int, long_events: int) -> bytes:
    commands = clinic_commands(courses, seed=99) + long_course(long_events)
    return b"".join(orjson.dumps(c) + b"\n" for c in commands)


def course_ids(data: bytes) -> list[str]:
    return sorted({c["course_id"] for c in map(json.loads, data.splitlines())
                   if c["command"] == "open_course"})


def answers(app: Coursebook, data: bytes) -> dict[str, Any]:
    """What the store answers, record times and log positions aside."""
    ledger = read_ledger(app)
    ledger.check()
    courses = {}
    for course_id in course_ids(data):
        try:
            courses[course_id] = app.get_course(course_id)
        except Rejected as refused:
            courses[course_id] = str(refused.code)
    verified = app.verify()
    return {
        "events": ledger.digest(),
        "refusals": ledger.refusals,
        "courses": courses,
        "audit": [{k: v for k, v in row.items() if k not in {"position", "recorded_at"}}
                  for row in app.audit()
                  if row["event"] not in {"Configured", "CatalogueAdopted"}],  # init's time
        "calendar": app.calendar(),
        "compliance": app.compliance(as_of=END),
        "verify": (verified["ok"], verified["events"], verified["problems"]),
    }


def lines_decided(report: dict[str, Any]) -> tuple[int, list[Any]]:
    """A report as the lines it decided: how many were accepted (applied now or before),
    and each refused line with its number, command_id, code, field and message."""
    return report["applied"] + report["duplicates"], report["rejected"]


@pytest.fixture
def master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """One master key for every store and process of a test, so that keyed receipt
    digests compare equal."""
    monkeypatch.setenv(MASTER_KEY_ENV, new_master_key_text())


def clean_import(data: bytes, clock: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """One import, never interrupted, into a store in memory: (its report, its answers)."""
    app = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    try:
        app.initialise("Europe/Paris", "default@2")  # as `coursebook init` does
        report = app.import_lines(data).as_dict()
        return report, answers(app, data)
    finally:
        app.close()


@pytest.fixture
def store_kind(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    kind: str = request.param
    yield kind
    release(kind, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("store_kind", params(PERSISTENT_KINDS), indirect=True)
@pytest.mark.usefixtures("master_key")
def test_a_clinic_imported_in_parts_and_twice_equals_one_clean_import(
        store_kind: str, tmp_path: Path, observed: Callable[[str], None]) -> None:
    data = clinic_file(*SIZES[store_kind])
    lines = data.splitlines(keepends=True)
    clock = FixedClock(NOW)
    clean_report, clean = clean_import(data, clock)
    assert clean_report["rejected"], "a clinic without refused lines proves nothing"

    app = make_app(store_kind, tmp_path, clock, catalogue="default@2")
    try:
        # Crash-like partial imports: a first part, then a longer one over it.
        first = app.import_lines(b"".join(lines[:len(lines) // 3])).as_dict()
        second = app.import_lines(b"".join(lines[:2 * len(lines) // 3])).as_dict()
        assert second["duplicates"] >= first["applied"]
        whole = app.import_lines(data).as_dict()
        assert lines_decided(whole) == lines_decided(clean_report)
        assert answers(app, data) == clean
        again = app.import_lines(data).as_dict()
        assert again["applied"] == 0
        assert lines_decided(again) == lines_decided(clean_report)
        assert answers(app, data) == clean
    finally:
        app.close()
    observed(f"{len(lines)} lines ({clean_report['applied']} applied, "
             f"{clean_report['duplicates']} duplicates, {len(clean_report['rejected'])} "
             f"refused) imported as 1/3, 2/3, the whole, the whole again: each report of "
             f"the whole file equals the clean one, line by line, and the store equals it")


def test_a_refused_line_is_refused_again_with_the_same_code_after_the_state_moved_on(
        master_key: None) -> None:
    """The issue's example: C-000054's session refused PLAN_EXCEEDED before its
    `complete_course` was recorded as a maintenance session dated before it on the
    second import; and lines came back with other codes."""
    data = clinic_file(120, 60)
    clock = FixedClock(NOW)
    app = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    try:
        app.initialise("Europe/Paris")
        first = app.import_lines(data).as_dict()
        second = app.import_lines(data).as_dict()
    finally:
        app.close()
    codes = {r["code"] for r in first["rejected"]}
    assert {"TOO_SOON", "PLAN_EXCEEDED"} <= codes, codes
    assert second["applied"] == 0
    assert second["rejected"] == first["rejected"]


# -- kill -9 -------------------------------------------------------------------------------

def progress(reader: Coursebook) -> int:
    return reader.recorder.max_notification_id() or 0


def start_import(target: str, source: Path, batch: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "COURSEBOOK_DB"}
    env["COURSEBOOK_IMPORT_BATCH"] = str(batch)
    return subprocess.Popen([*CLI, "--db", target, "--format", "json", "import", str(source)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)


def kill_after(process: subprocess.Popen[bytes], reader: Coursebook, rng: random.Random,
               grown_past: int) -> bool:
    """SIGKILLs the importer a random few milliseconds after the store grew past
    `grown_past` records; False if it finished first."""
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if progress(reader) >= grown_past:
            time.sleep(rng.uniform(0, 0.03))
            break
        time.sleep(0.005)
    if process.poll() is not None:
        process.communicate()
        return False
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    return True


@pytest.mark.slow
@pytest.mark.usefixtures("master_key")
def test_imports_killed_at_random_moments_then_run_again_equal_one_clean_import(
        shared_target: str, tmp_path: Path, observed: Callable[[str], None]) -> None:
    data = clinic_file(*KILL_CLINIC)
    source = tmp_path / "clinic.jsonl"
    source.write_bytes(data)
    clean_report, clean = clean_import(data)  # the system clock, as the command line's
    total = len(data.splitlines())
    assert subprocess.run([*CLI, "--db", shared_target, "init", "--timezone", "Europe/Paris"],
                          capture_output=True, check=False).returncode == 0
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    kills, heads = 0, []
    reader = open_store(shared_target)
    try:
        for _ in range(KILL_ROUNDS):
            head = progress(reader)
            # Most rounds die early in the file's remaining part; some run through.
            grown_past = head + rng.randint(1, max(2, total // 8))
            importer = start_import(shared_target, source, batch=rng.choice([1, 5, 50]))
            kills += kill_after(importer, reader, rng, grown_past)
            read_ledger(reader).check()  # whole commands only, refusals included
            heads.append(progress(reader))
    finally:
        reader.close()
    finished = subprocess.run(
        [*CLI, "--db", shared_target, "--format", "json", "import", str(source)],
        capture_output=True, check=False, timeout=600,
        env={k: v for k, v in os.environ.items() if k != "COURSEBOOK_DB"})
    report = json.loads(finished.stdout)
    assert lines_decided(report) == lines_decided(clean_report)
    app = open_store(shared_target)
    try:
        assert answers(app, data) == clean
        # An importer killed between its commit and its views' catch-up, with nothing
        # left for the re-run to apply, leaves a view behind: a query catches it up first.
        read_models.catch_up(app)
        live = views_snapshot(app)
        read_models.rebuild(app)
        assert views_snapshot(app) == live
    finally:
        app.close()
    observed(f"{kills} of {KILL_ROUNDS} importers of {total} lines killed mid-import "
             f"(store heads after each round: {heads}); the re-run applied "
             f"{report['applied']} and refused {len(report['rejected'])} lines exactly as "
             f"a clean import; the store equals it, on "
             f"{'PostgreSQL' if is_postgres(shared_target) else 'SQLite'}")
    assert kills >= KILL_ROUNDS // 2, "too few importers were killed while they ran"


# -- racing importers ----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize(("importers", "batch"), [(2, 1), (2, 5), (2, 500), (3, 1), (3, 5),
                                                   (3, 500)])
@pytest.mark.usefixtures("master_key")
def test_racing_importers_each_report_what_one_import_reports(
        shared_target: str, tmp_path: Path, observed: Callable[[str], None],
        importers: int, batch: int) -> None:
    data = clinic_file(*RACE_CLINIC)
    source = tmp_path / "clinic.jsonl"
    source.write_bytes(data)
    clean_report, clean = clean_import(data)
    assert subprocess.run([*CLI, "--db", shared_target, "init", "--timezone", "Europe/Paris"],
                          capture_output=True, check=False).returncode == 0
    racers = [start_import(shared_target, source, batch) for _ in range(importers)]
    reports = []
    for racer in racers:
        out, _ = racer.communicate(timeout=600)
        assert racer.returncode in (0, 1), racer.returncode
        reports.append(json.loads(out))
    for report in reports:
        assert lines_decided(report) == lines_decided(clean_report)
    assert sum(r["applied"] for r in reports) == clean_report["applied"]
    app = open_store(shared_target)
    try:
        assert answers(app, data) == clean
    finally:
        app.close()
    observed(f"{importers} importers at batch size {batch} on "
             f"{'PostgreSQL' if is_postgres(shared_target) else 'SQLite'}: applied "
             f"{[r['applied'] for r in reports]} of {clean_report['applied']}, each "
             f"reported the {len(clean_report['rejected'])} refused lines of one import")
