"""Group commit: many threads sharing one instance, their commands recorded together.

What a host relies on when its threads share one `Coursebook` for their commands:

- a command that fails inside a group (here an injected error in the middle of it)
  records nothing, and its neighbours in the same group are applied as if it had never
  been sent; a refused neighbour is refused as it would be alone;
- the same commands sent by every thread at once apply once each: the others are
  answered `duplicate`, the store holds each command's events once, and the views equal
  a rebuild;
- a store that stops answering during a group's commit answers `StoreUnavailable` to
  each of its commands, and each sent again applies once;
- a process killed with SIGKILL while its threads' groups are being written leaves
  each command wholly in the store or not at all, and sending everything again applies
  the rest exactly once.

Groups are made deterministic where a test needs one: a first command holds its leader
until the others are waiting, so they form the next group together.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from coursebook import Code, Coursebook, Rejected, StoreUnavailable, open_store
from coursebook.adapters.storage.persistence import is_postgres
from coursebook.clock import FixedClock
from coursebook.domain.course import TreatmentCourse
from coursebook.service import read_models
from tests.integration import group_writer
from tests.integration.ledger import read_ledger, views_snapshot
from tests.logcapture import capture_logs
from tests.stores import PG_TEST_ENV, START, make_app

AT = group_writer.AT
HOLD = "hold the leader"
FAIL = "injected failure"
TIMEOUT = 60
ROOT = Path(__file__).resolve().parents[2]


def adjust(command_id: str, course_id: str, reason: str = "group test adjustment",
           target_days: int = 12) -> dict[str, Any]:
    return {"command": "adjust_interval", "command_id": command_id, "at": AT,
            "actor": "dr-ada", "course_id": course_id, "min_days": 7,
            "target_days": target_days, "max_days": 40, "reason": reason}


def prepared(kind: str, tmp_path: Path, courses: list[str]) -> Coursebook:
    app = make_app(kind, tmp_path, FixedClock(START))
    app.execute(group_writer.PRACTITIONER)
    for course in courses:
        app.execute({"command": "open_course", "command_id": f"open-{course}", "at": AT,
                     "actor": "admin", "course_id": course, "patient_ref": f"P-{course}",
                     "indication": "skin_rejuvenation"})
        app.execute({"command": "record_consultation", "command_id": f"consult-{course}",
                     "at": AT, "actor": "dr-ada", "course_id": course, "consent": True,
                     "screening": group_writer.SCREENING})
    return app


class Hold:
    """Set `holding` once a HOLD command is being decided; it waits for `release`."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()


def hold_and_inject(monkeypatch: pytest.MonkeyPatch) -> Hold:
    """`adjust_interval` with reason HOLD waits for the returned hold's release; with
    reason FAIL it changes the course, then raises RuntimeError (a bug in the middle of
    a group, as far as the engine knows)."""
    hold = Hold()
    original = TreatmentCourse.adjust_interval

    def adjust_interval(self: TreatmentCourse, ctx: Any, **fields: Any) -> None:
        if fields["reason"] == HOLD:
            hold.holding.set()
            assert hold.release.wait(TIMEOUT)
        original(self, ctx, **fields)
        if fields["reason"] == FAIL:  # after changing the course (its copy)
            raise RuntimeError("injected")

    monkeypatch.setattr(TreatmentCourse, "adjust_interval", adjust_interval)
    return hold


def in_one_group(app: Coursebook, hold: Hold, holder: dict[str, Any],
                 bodies: list[dict[str, Any]]) -> list[Any]:
    """Sends `holder` (its leader held), then each of `bodies` from a thread of its own;
    once they all wait, releases the holder, so that they are decided as one group.
    Returns each body's Outcome or the exception it raised, in the order of `bodies`."""
    results: list[Any] = [None] * len(bodies)

    def send(n: int, body: dict[str, Any]) -> None:
        try:
            results[n] = app.execute(body)
        except Exception as error:
            results[n] = error

    first = threading.Thread(target=app.execute, args=(holder,))
    first.start()
    assert hold.holding.wait(TIMEOUT)  # its leader is deciding it, alone
    deadline = time.monotonic() + TIMEOUT
    threads = [threading.Thread(target=send, args=(n, b)) for n, b in enumerate(bodies)]
    for thread in threads:
        thread.start()
    while len(app._group_waiting) < len(bodies) and time.monotonic() < deadline:
        time.sleep(0.001)
    hold.release.set()
    for thread in [first, *threads]:
        thread.join(TIMEOUT)
    return results


def groups_logged(events: list[dict[str, Any]]) -> list[int]:
    return [e["commands"] for e in events if e["event"] == "group"]


def test_a_command_failing_in_its_group_records_nothing_and_its_neighbours_commit(
        kind: str, shared_target: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = prepared(kind, tmp_path, ["A", "B", "C", "D"])
    hold = hold_and_inject(monkeypatch)
    bodies = [adjust("g-1", "A"), adjust("g-boom", "B", FAIL), adjust("g-3", "C"),
              {**adjust("g-missing", "NOWHERE")}, adjust("g-5", "A", target_days=14),
              adjust("g-1", "A")]  # a retry of g-1, in the same group
    with capture_logs() as events:
        results = in_one_group(app, hold, adjust("g-hold", "D", HOLD), bodies)
    assert len(bodies) in groups_logged(events)  # they were decided as one group
    first, boom, third, missing, fifth, retry = results
    assert isinstance(boom, RuntimeError)
    assert third.status == "applied"
    assert isinstance(missing, Rejected)
    assert missing.code == Code.NOT_FOUND
    assert sorted([first.status, retry.status]) == ["applied", "duplicate"]
    assert fifth.status == "applied"
    ledger = read_ledger(app)
    ledger.check()
    assert "g-boom" not in ledger.receipts
    assert "g-boom" not in ledger.by_command
    assert "g-boom" not in ledger.refusals
    assert {"g-1", "g-3", "g-5", "g-hold"} <= set(ledger.receipts)
    assert len(ledger.by_command["g-1"]) == 1  # applied once, though sent twice
    assert ledger.refusals["g-missing"][0][1] == "NOT_FOUND"
    b = app.get_course("B")
    assert b["version"] == 2  # opened and consulted: the failed adjustment left nothing
    monkeypatch.undo()
    assert app.execute(adjust("g-boom", "B", FAIL)).status == "applied"  # nothing held it
    assert app.verify()["ok"]
    app.close()


def test_the_same_commands_sent_by_every_thread_at_once_apply_once(
        kind: str, shared_target: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    threads = 8
    app = prepared(kind, tmp_path, ["H"])
    hold = hold_and_inject(monkeypatch)
    sequence = [
        {"command": "open_course", "command_id": "r-open", "at": AT, "actor": "admin",
         "course_id": "R", "patient_ref": "P-R", "indication": "skin_rejuvenation"},
        {"command": "record_consultation", "command_id": "r-consult", "at": AT,
         "actor": "dr-ada", "course_id": "R", "consent": True,
         "screening": group_writer.SCREENING},
        *[adjust(f"r-adjust-{n}", "R", target_days=10 + n) for n in range(4)],
    ]
    statuses: dict[str, list[str]] = defaultdict(list)
    lock = threading.Lock()

    def rest(n: int) -> None:  # each thread's remaining commands, as fast as it can
        for body in sequence[1:]:
            status = app.execute(body).status
            with lock:
                statuses[body["command_id"]].append(status)

    with capture_logs() as events:
        # Every thread's first command in one group: eight copies of one command id.
        firsts = in_one_group(app, hold, adjust("r-hold", "H", HOLD),
                              [sequence[0]] * threads)
        workers = [threading.Thread(target=rest, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(TIMEOUT)
    assert threads in groups_logged(events)
    statuses["r-open"] = [outcome.status for outcome in firsts]
    for command_id in [body["command_id"] for body in sequence]:
        assert Counter(statuses[command_id]) == {"applied": 1, "duplicate": threads - 1}, \
            command_id
    other_body = {**sequence[0], "actor": "someone-else"}
    with pytest.raises(Rejected) as refused:
        app.execute(other_body)
    assert refused.value.code == Code.CONFLICTING_DUPLICATE
    ledger = read_ledger(app)
    ledger.check()
    assert app.get_course("R")["version"] == len(sequence)
    assert not ledger.refusals
    assert app.verify()["ok"]
    live = views_snapshot(app)
    read_models.rebuild(app)
    assert views_snapshot(app) == live
    app.close()


def test_a_store_that_fails_on_a_groups_commit_leaves_every_command_to_retry(
        kind: str, shared_target: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = prepared(kind, tmp_path, ["A", "B", "C", "D"])
    hold = hold_and_inject(monkeypatch)
    writes: Any = app.events.horizon  # every insert of events goes through it
    insert = writes.insert
    before = app.recorder.max_notification_id()

    def gone_for_groups(recorder: Any, events: list[Any], *args: Any, **kwargs: Any) -> Any:
        if len(events) > 2:  # a group's (the holder alone writes one event, one receipt)
            raise OperationalError("server closed the connection unexpectedly")
        return insert(recorder, events, *args, **kwargs)

    monkeypatch.setattr(writes, "insert", gone_for_groups)
    bodies = [adjust("u-1", "A"), adjust("u-2", "B"), adjust("u-3", "C")]
    results = in_one_group(app, hold, adjust("u-hold", "D", HOLD), bodies)
    assert all(isinstance(result, StoreUnavailable) for result in results)
    assert app.recorder.max_notification_id() == (before or 0) + 2  # the holder's alone
    monkeypatch.undo()
    for body in bodies:  # sent again, each applies once
        assert app.execute(body).status == "applied"
        assert app.execute(body).status == "duplicate"
    read_ledger(app).check()
    app.close()


def clean_run(threads: int, courses: int, adjustments: int) -> dict[str, int]:
    """The events each command records, from an uninterrupted run in memory."""
    app = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=FixedClock(START))
    app.initialise("Europe/Paris")
    app.execute(group_writer.PRACTITIONER)
    group_writer.run(app, threads, courses, adjustments)
    expected = {c: len(events) for c, events in read_ledger(app).by_command.items()}
    app.close()
    return expected


def test_a_process_killed_mid_group_leaves_whole_commands_and_resumes_exactly(
        kind: str, shared_target: str, observed: Callable[[str], None]) -> None:
    threads, courses, adjustments = 8, 2, 8
    expected = clean_run(threads, courses, adjustments)
    extra = PG_TEST_ENV if kind == "postgres" else {}
    app = open_store(shared_target, create=True, clock=FixedClock(START), extra_env=extra)
    app.initialise("Europe/Paris")
    app.execute(group_writer.PRACTITIONER)
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    env = {k: v for k, v in os.environ.items() if k != "COURSEBOOK_DB"}
    kills, before = 0, 0
    for _ in range(3):  # until one kill lands while the writer still writes
        start = app.recorder.max_notification_id() or 0
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.group_writer", shared_target,
             str(threads), str(courses), str(adjustments)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stop_after = start + rng.randint(20, 120)
        deadline = time.monotonic() + TIMEOUT
        while writer.poll() is None and time.monotonic() < deadline:
            if (app.recorder.max_notification_id() or 0) >= stop_after:
                time.sleep(rng.uniform(0, 0.02))
                break
            time.sleep(0.005)
        if writer.poll() is None:
            writer.send_signal(signal.SIGKILL)
            kills += 1
        writer.wait(TIMEOUT)
        ledger = read_ledger(app)
        ledger.check(expected_events=expected)  # whole commands only
        before = len([c for c in ledger.receipts if c != "g-reg"])
        if kills:
            break
    assert kills, "the writer always finished before it was killed: nothing was proved"
    statuses = Counter(group_writer.run(app, threads, courses, adjustments))
    final = read_ledger(app)
    final.check(expected_events=expected)
    total = sum(len(group_writer.plan(n, courses, adjustments)) for n in range(threads))
    assert statuses == {"applied": total - before, "duplicate": before}
    assert set(final.by_command) == set(expected)
    assert app.verify()["ok"]
    app.close()
    observed(f"killed a writer of {threads} threads after {before} of {total} commands; "
             f"the re-run applied {statuses['applied']} and found {statuses['duplicate']} "
             f"duplicates, on {'PostgreSQL' if is_postgres(shared_target) else 'SQLite'}")
