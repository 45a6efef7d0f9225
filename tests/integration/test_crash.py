"""A writer and a view worker killed with SIGKILL at random points, round after round,
lose nothing.

The writer is the real command line importing a file of many commands; beside it runs
`coursebook projections run` (small pages, so kills land between and inside page
commits). After each round the store must hold each command wholly or not at all (its
receipt exactly when all of its events); re-running the import applies the rest exactly
once and reports the commands already there as duplicates; the final events equal a
clean run's, and the views equal a rebuild from zero (no event applied twice or lost).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coursebook.adapters.storage.keys import MASTER_KEY_ENV, new_master_key_text
from coursebook.adapters.storage.persistence import is_postgres
from coursebook.bootstrap import open_store
from coursebook.service import read_models
from coursebook.service.application import Coursebook
from tests.integration.ledger import Ledger, read_ledger, views_snapshot

CLI = [sys.executable, "-m", "coursebook.adapters.entrypoints.cli"]
COURSES, ADJUSTMENTS, ROUNDS = 16, 10, 3
SCREENING = {"pregnant": False, "breastfeeding": False, "active_infection_at_site": False,
             "bleeding_disorder": False, "anticoagulants": False, "autoimmune_disease": False,
             "diabetes": False, "heart_condition": False, "allergies": [], "medications": []}


def commands() -> list[dict[str, Any]]:
    """Many commands on interleaved courses, a few of them refused (NOT_FOUND)."""
    def cmd(name: str, n: int, actor: str = "dr-ada", /, **fields: Any) -> dict[str, Any]:
        return {"command": name, "command_id": f"crash-{n}",
                "at": f"2024-03-{4 + n // 100:02d}T10:00:00+01:00", "actor": actor, **fields}

    out = [cmd("register_practitioner", 0, "admin", practitioner_id="dr-ada", name="Ada",
               role="physician", license_number="L-1", license_expires_on="2030-01-01")]
    for c in range(COURSES):
        out.append(cmd("open_course", len(out), "admin", course_id=f"K{c}",
                       patient_ref=f"P{c}", indication="skin_rejuvenation",
                       patient={"name": f"Patient {c}", "birth_date": "1980-01-01"}))
        out.append(cmd("record_consultation", len(out), course_id=f"K{c}", consent=True,
                       screening=SCREENING))
    for a in range(ADJUSTMENTS):
        for c in range(COURSES):
            course = f"K{c}" if (a * COURSES + c) % 37 else "K-missing"
            out.append(cmd("adjust_interval", len(out), course_id=course, min_days=7,
                           target_days=10 + a, max_days=40, reason="crash test adjustment"))
    return out


def reference(data: bytes) -> tuple[Ledger, dict[str, Any]]:
    """The clean run: the same file into a store in memory, never interrupted."""
    app = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.initialise("Europe/Paris")
    report = app.import_lines(data).as_dict()
    ledger = read_ledger(app)
    app.close()
    return ledger, report


def progress(reader: Coursebook) -> int:
    return reader.recorder.max_notification_id() or 0


def start_import(target: str, source: Path, batch: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "COURSEBOOK_DB"}
    env["COURSEBOOK_IMPORT_BATCH"] = str(batch)  # small: kills land between commits
    return subprocess.Popen([*CLI, "--db", target, "--format", "json", "import", str(source)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)


def start_worker(target: str, page_size: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "COURSEBOOK_DB"}
    env["COURSEBOOK_VIEW_PAGE_SIZE"] = str(page_size)
    return subprocess.Popen([*CLI, "--db", target, "--format", "json", "projections", "run",
                             "--poll", "0.05"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def view_position(reader: Coursebook) -> int:
    return min(runner.view.position() for runner in read_models.runners(reader).values())


def kill_worker_at_random(worker: subprocess.Popen[bytes], reader: Coursebook,
                          rng: random.Random, start: int) -> bool:
    """SIGKILLs the worker a random few milliseconds after its views first moved past
    `start` (True), or after a while if they never did (False)."""
    deadline = time.monotonic() + 10
    moved = False
    while worker.poll() is None and time.monotonic() < deadline:
        if view_position(reader) > start:
            moved = True
            time.sleep(rng.uniform(0, 0.03))
            break
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    return moved


def kill_at_random(process: subprocess.Popen[bytes], reader: Coursebook, rng: random.Random,
                   stop_after: int) -> bool:
    """Waits until the store has grown past `stop_after` records, then SIGKILLs the
    writer a random few milliseconds later. False if it finished first."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if progress(reader) >= stop_after:
            time.sleep(rng.uniform(0, 0.02))
            break
        time.sleep(0.01)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return True


@pytest.mark.slow
def test_a_writer_killed_at_random_points_leaves_whole_commands_and_resumes_exactly(
        shared_target: str, tmp_path: Path, observed: Callable[[str], None],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # One master key for the store, its processes and the clean run, so that keyed
    # digests (receipts) compare equal.
    monkeypatch.setenv(MASTER_KEY_ENV, new_master_key_text())
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    source = tmp_path / "many.jsonl"
    data = b"".join(json.dumps(c).encode() + b"\n" for c in commands())
    source.write_bytes(data)
    clean, clean_report = reference(data)
    expected = {c: len(events) for c, events in clean.by_command.items()}
    assert subprocess.run([*CLI, "--db", shared_target, "init", "--timezone", "Europe/Paris"],
                          capture_output=True, check=False).returncode == 0

    kills, worker_kills, seen = 0, 0, []
    reader = open_store(shared_target)
    try:
        for _ in range(ROUNDS):
            before, viewed = progress(reader), view_position(reader)
            worker = start_worker(shared_target, page_size=rng.choice([2, 5, 11]))
            writer = start_import(shared_target, source, batch=rng.choice([1, 4, 9]))
            worker_kills += kill_worker_at_random(worker, reader, rng, viewed)
            stop_after = before + rng.randint(5, max(6, len(clean.events) // ROUNDS))
            kills += kill_at_random(writer, reader, rng, stop_after)
            ledger = read_ledger(reader)
            ledger.check(expected_events=expected)  # whole commands only
            seen.append(len(ledger.receipts))
    finally:
        reader.close()

    finished = subprocess.run(
        [*CLI, "--db", shared_target, "--format", "json", "import", str(source)],
        capture_output=True, check=False, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "COURSEBOOK_DB"})
    report = json.loads(finished.stdout)
    assert report["duplicates"] == seen[-1]
    assert report["applied"] == clean_report["applied"] - seen[-1]
    assert [r["command_id"] for r in report["rejected"]] == \
        [r["command_id"] for r in clean_report["rejected"]]
    app = open_store(shared_target)
    try:
        final = read_ledger(app)
        live = views_snapshot(app)  # the killed workers' pages, then the import's catch-up
        read_models.rebuild(app)
        rebuilt = views_snapshot(app)
    finally:
        app.close()
    final.check(expected_events=expected)
    assert final.digest() == clean.digest()
    assert live == rebuilt
    observed(f"{kills} of {ROUNDS} writers killed mid-import (receipts after each: {seen}), "
             f"{worker_kills} workers killed while their views moved; the re-run applied "
             f"{report['applied']}, reported {report['duplicates']} duplicates; the store "
             f"equals a clean run ({len(final.events)} events) and the views a rebuild, on "
             f"{'PostgreSQL' if is_postgres(shared_target) else 'SQLite'}")
    assert kills >= 1, "no writer was killed while it ran: the test proved nothing"
    assert worker_kills >= 1, "no worker was killed while it worked: it proved nothing"
