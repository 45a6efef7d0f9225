"""Several processes, each with several threads, write to one store at the same moment.

They are released together by a barrier and send commands on a few overlapping courses:
their own (retried on CONFLICT with the same command_id, some sent again as if a reply
was lost), and shared ones that every writer sends with the same command_id. Afterwards
no event is lost or duplicated, every command was applied exactly once or refused with a
code, each shared command applied once, and the run must have observed conflicts (one
that saw none proved nothing, and fails).

On PostgreSQL this is the deployment for several processes; on SQLite several processes
on one file must be either correct or refused clearly (StoreUnavailable, retried), never
corrupt.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from coursebook.adapters.storage.persistence import is_postgres
from coursebook.bootstrap import open_store
from coursebook.errors import Code
from tests.integration.ledger import read_ledger
from tests.integration.workers import writer_process

PROCESSES, THREADS, COMMANDS = 3, 2, 14
COURSES = ["C0", "C1", "C2"]
TOGGLED = "C3"  # paused and resumed by everyone: conflicts and INVALID refusals
SHARED_EVERY = 3  # every third command of each writer is a shared one
AT = "2024-03-06T10:00:00+01:00"
TIMEOUT = 120


def base(name: str, command_id: str, actor: str = "dr-ada", /, **fields: Any) -> dict[str, Any]:
    return {"command": name, "command_id": command_id, "at": AT, "actor": actor, **fields}


def adjust(command_id: str, course_id: str, target_days: int) -> dict[str, Any]:
    return base("adjust_interval", command_id, course_id=course_id, min_days=7,
                target_days=target_days, max_days=60, reason="concurrency test adjustment")


def prepare(target: str) -> None:
    app = open_store(target, create=True)
    try:
        app.initialise("Europe/Paris")
        app.execute(base("register_practitioner", "setup-dr", "admin",
                         practitioner_id="dr-ada", name="Ada", role="physician",
                         license_number="L-1", license_expires_on="2030-01-01"))
        for n, course_id in enumerate([*COURSES, TOGGLED]):
            app.execute(base("open_course", f"setup-open-{n}", "admin", course_id=course_id,
                             patient_ref=f"P{n}", indication="skin_rejuvenation"))
            app.execute(base("record_consultation", f"setup-consult-{n}", course_id=course_id,
                             consent=True, screening={
                                 "pregnant": False, "breastfeeding": False,
                                 "active_infection_at_site": False,
                                 "bleeding_disorder": False, "anticoagulants": False,
                                 "autoimmune_disease": False, "diabetes": False,
                                 "heart_condition": False, "allergies": [],
                                 "medications": []}))
    finally:
        app.close()


def expected_events(command_ids: Any) -> dict[str, int]:
    """open_course records the course and the patient's record; the others one event."""
    return {c: 2 if c.startswith("setup-open") else 1 for c in command_ids}


def plans(seed: int) -> list[list[list[dict[str, Any]]]]:
    """plans[process][thread] = the commands that writer sends, in order."""
    rng = random.Random(seed)
    out = []
    for p in range(PROCESSES):
        threads = []
        for t in range(THREADS):
            plan = []
            for k in range(COMMANDS):
                if k % SHARED_EVERY == 0:  # the same id and body from every writer
                    j = k // SHARED_EVERY
                    plan.append(adjust(f"shared-{j}", COURSES[j % len(COURSES)], 20 + j))
                elif rng.random() < 0.2:
                    name = rng.choice(["pause_course", "resume_course"])
                    plan.append(base(name, f"w{p}.{t}-{k}", course_id=TOGGLED,
                                     reason="concurrency test toggle"))
                else:
                    plan.append(adjust(f"w{p}.{t}-{k}", rng.choice(COURSES),
                                       rng.randint(8, 59)))
            threads.append(plan)
        out.append(threads)
    return out


def run_writers(target: str, seed: int) -> tuple[list[dict[str, Any]], int]:
    """Every send's record, and how many groups the engines recorded one by one after a
    conflict with another process (threads sharing an instance commit in groups)."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES * THREADS)
    results = ctx.Queue()
    env = {"POSTGRES_POOL_SIZE": str(THREADS), "POSTGRES_MAX_OVERFLOW": "0"}
    processes = [ctx.Process(target=writer_process,
                             args=(target, env, plan, barrier, results, seed + n))
                 for n, plan in enumerate(plans(seed))]
    for process in processes:
        process.start()
    records: list[dict[str, Any]] = []
    redone = 0
    try:
        for _ in processes:
            report = results.get(timeout=TIMEOUT)
            records.extend(report["records"])
            redone += report["groups_redone"]
    except queue.Empty:
        pytest.fail("a writer process did not report in time")
    finally:
        for process in processes:
            process.join(timeout=TIMEOUT)
            if process.is_alive():
                process.kill()
    assert all(process.exitcode == 0 for process in processes)
    return records, redone


@pytest.mark.slow
def test_writers_racing_on_overlapping_courses_lose_nothing_and_apply_each_command_once(
        shared_target: str, observed: Callable[[str], None]) -> None:
    prepare(shared_target)
    sent = [body for process in plans(7) for thread in process for body in thread]
    records, redone = run_writers(shared_target, 7)

    # Every send ended in an outcome or a refusal with a code, never anything else.
    errors = [r for r in records if r["status"] not in {"applied", "duplicate", "rejected"}]
    assert errors == []
    assert all(r["code"] in set(Code) for r in records if r["status"] == "rejected")
    firsts = [r for r in records if not r["resend"]]
    assert len(firsts) == len(sent)
    assert all(r["status"] == "duplicate" for r in records if r["resend"])

    # Each command_id applied exactly once if a receipt holds it, and never otherwise.
    app = open_store(shared_target)
    try:
        ledger = read_ledger(app)
        ledger.check(expected_events=expected_events(ledger.receipts))
        applied = Counter(r["command_id"] for r in records if r["status"] == "applied")
        ids = {body["command_id"] for body in sent}
        assert {c for c in ids if applied[c]} == {c for c in ids if c in ledger.receipts}
        assert all(applied[c] <= 1 for c in ids), \
            {c: n for c, n in applied.items() if n != 1}
        for r in records:
            if r["status"] == "duplicate":
                assert r["command_id"] in ledger.receipts
            if r["status"] == "rejected" and not r["command_id"].startswith("shared-"):
                assert r["command_id"] not in ledger.receipts  # only its sender had it

        # The same command_id sent by every writer at once: applied once, duplicates else.
        shared = defaultdict(list)
        for r in firsts:
            if r["command_id"].startswith("shared-"):
                shared[r["command_id"]].append(r["status"])
        for command_id, statuses in shared.items():
            assert statuses.count("applied") == 1, (command_id, statuses)
            assert len(statuses) == PROCESSES * THREADS

        # Each course's version counts exactly the commands applied on it.
        per_course = Counter(ledger.receipts[c].subject for c in ledger.receipts
                             if not c.startswith("setup-"))
        for course_id in [*COURSES, TOGGLED]:
            assert app.get_course(course_id)["version"] == 2 + per_course[course_id]
    finally:
        app.close()
    if not is_postgres(shared_target):
        with sqlite3.connect(shared_target) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    conflicts = sum(r["conflicts"] for r in records)
    unavailable = sum(r["unavailable"] for r in records)
    refused = Counter(r["code"] for r in records if r["status"] == "rejected")
    observed(f"{PROCESSES} processes x {THREADS} threads, {len(sent)} commands sent, "
             f"{len(ledger.receipts) - 9} applied, {conflicts} CONFLICT retries, "
             f"{redone} groups recorded one by one after a conflict, "
             f"{unavailable} store-unavailable retries, refused {dict(refused)}, "
             f"{sum(1 for r in records if r['resend'])} lost-reply resends (all duplicates)")
    assert conflicts + redone > 0, \
        "no conflict was observed: the writers did not really overlap"


@pytest.mark.slow
def test_the_same_command_sent_by_every_process_at_once_applies_once(
        shared_target: str, observed: Callable[[str], None]) -> None:
    """Only shared commands: every writer sends the same ids in the same order."""
    prepare(shared_target)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    plan = [adjust(f"same-{k}", COURSES[k % len(COURSES)], 10 + k) for k in range(10)]
    processes = [ctx.Process(target=writer_process,
                             args=(shared_target, {"POSTGRES_POOL_SIZE": "1"}, [plan],
                                   barrier, results, n))
                 for n in range(PROCESSES)]
    for process in processes:
        process.start()
    records = [r for _ in processes for r in results.get(timeout=TIMEOUT)["records"]]
    for process in processes:
        process.join(timeout=TIMEOUT)
    statuses = defaultdict(list)
    for r in records:
        if not r["resend"]:
            statuses[r["command_id"]].append(r["status"])
    assert set(statuses) == {body["command_id"] for body in plan}
    for command_id, seen in statuses.items():
        assert sorted(seen) == ["applied"] + ["duplicate"] * (PROCESSES - 1), \
            (command_id, seen)
    app = open_store(shared_target)
    try:
        ledger = read_ledger(app)
        ledger.check(expected_events=expected_events(ledger.receipts))
        assert {c for c in ledger.receipts if c.startswith("same-")} == set(statuses)
    finally:
        app.close()
    observed(f"{PROCESSES} processes sent {len(plan)} ids each: every id applied once, "
             f"{sum(r['conflicts'] for r in records)} CONFLICT retries on the way")
