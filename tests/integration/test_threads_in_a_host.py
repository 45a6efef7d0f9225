"""A threaded host, the way docs/embedding.md ("Concurrency in a host") says to embed the
engine: one `Coursebook` per thread (opened through a `threading.local`), all on the
same store, never one instance shared by threads.

Eight threads are released together by a barrier. Each drives a course of its own
(opening it, consulting, adjusting its interval, and sending some commands a second time
as a client whose reply was lost would), writes to one SHARED course with
`expected_version` (re-reading and retrying on CONFLICT), and sends the same commands
(same command_id, same body) as every other thread. Afterwards:

- every command was applied exactly once, reported as a duplicate, or refused with
  CONFLICT and then retried until applied; each course's applied versions run 1..n with
  no gap and no repeat, and its stored events are exactly the commands applied on it;
- `verify()` finds the store intact, and `views_status()` (on an instance that never
  caught anything up itself) finds every view up to date;
- the calendar and the audit trail equal those of a rebuild from zero;
- the library wrote nothing on standard output or standard error, and logged no warning.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coursebook import Code, Coursebook, Outcome, Rejected, StoreUnavailable, open_store
from tests.stores import PERSISTENT_KINDS, PG_TEST_ENV, params, release, target

THREADS = 8
STEPS = 6  # per thread: an own command, a versioned write on SHARED, every 2nd a common one
SHARED = "S"
AT = "2024-03-06T10:00:00+01:00"
MAX_ATTEMPTS = 50
TIMEOUT = 60
SCREENING = {"pregnant": False, "breastfeeding": False, "active_infection_at_site": False,
             "bleeding_disorder": False, "anticoagulants": False,
             "autoimmune_disease": False, "diabetes": False, "heart_condition": False,
             "allergies": [], "medications": []}


def body(name: str, command_id: str, actor: str = "dr-ada", /,
         **fields: Any) -> dict[str, Any]:
    return {"command": name, "command_id": command_id, "at": AT, "actor": actor, **fields}


def adjust(command_id: str, course_id: str, target_days: int,
           expected_version: int | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"course_id": course_id, "min_days": 7,
                              "target_days": target_days, "max_days": 60,
                              "reason": "threads test adjustment"}
    if expected_version is not None:
        fields["expected_version"] = expected_version
    return body("adjust_interval", command_id, **fields)


@pytest.fixture(params=params(PERSISTENT_KINDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    kind: str = request.param
    extra = PG_TEST_ENV if kind == "postgres" else {}
    yield target(kind, tmp_path), extra
    release(kind, tmp_path)


class Host:
    """What a threaded web server would hold: the store's target and a thread-local
    `Coursebook`, opened on a thread's first request and closed when the thread ends."""

    def __init__(self, target: str, extra_env: dict[str, str]) -> None:
        self.target = target
        self.extra_env = extra_env
        self.local = threading.local()
        self.opened: list[Coursebook] = []
        self.lock = threading.Lock()

    def coursebook(self) -> Coursebook:
        app: Coursebook | None = getattr(self.local, "app", None)
        if app is None:
            app = open_store(self.target, extra_env=self.extra_env)
            self.local.app = app
            with self.lock:
                self.opened.append(app)
        return app

    def close_all(self) -> None:
        for app in self.opened:
            app.close()


class Sender:
    """Sends commands for one thread and keeps a record of every attempt's result."""

    def __init__(self, host: Host, number: int) -> None:
        self.host = host
        self.rng = random.Random(number)
        self.records: list[dict[str, Any]] = []
        self.conflicts = 0
        self.unavailable = 0

    def send(self, make: Callable[[], dict[str, Any]], *, resend: bool = False) -> Outcome:
        """Sends `make()` until it is applied or reported a duplicate: CONFLICT and an
        unavailable store are retried with the same command_id (`make` is called again,
        so a versioned command reads the version again)."""
        app = self.host.coursebook()
        for _ in range(MAX_ATTEMPTS):
            command = make()
            try:
                outcome = app.execute(command)
            except Rejected as refused:
                self.records.append({"command_id": command["command_id"],
                                     "status": "rejected", "code": refused.code})
                if refused.code != Code.CONFLICT:
                    raise
                self.conflicts += 1
                time.sleep(self.rng.uniform(0, 0.005))
                continue
            except StoreUnavailable:
                self.unavailable += 1
                time.sleep(self.rng.uniform(0, 0.02))
                continue
            self.records.append({"command_id": command["command_id"],
                                 "status": outcome.status, "subject": outcome.subject,
                                 "version": outcome.version, "resend": resend})
            if resend:
                return outcome
            if outcome.status == "applied" and self.rng.random() < 0.3:
                self.send(lambda sent=command: sent, resend=True)  # a lost reply
            return outcome
        raise AssertionError(f"{make()['command_id']}: not applied in {MAX_ATTEMPTS} tries")


def thread_plan(sender: Sender, number: int, barrier: threading.Barrier) -> None:
    host = sender.host
    host.coursebook()  # opened before the barrier, as a server opens it on startup
    barrier.wait(timeout=TIMEOUT)
    own = f"T{number}"
    sender.send(lambda: body("open_course", f"{own}-open", "admin", course_id=own,
                             patient_ref=f"P{number}", indication="skin_rejuvenation"))
    sender.send(lambda: body("record_consultation", f"{own}-consult", course_id=own,
                             consent=True, screening=SCREENING))

    def versioned(command_id: str, target_days: int) -> Callable[[], dict[str, Any]]:
        def make() -> dict[str, Any]:
            version = host.coursebook().get_course(SHARED)["version"]
            return adjust(command_id, SHARED, target_days, expected_version=version)
        return make

    for step in range(STEPS):
        sender.send(lambda step=step: adjust(f"{own}-adjust-{step}", own, 10 + step))
        sender.send(versioned(f"{own}-shared-{step}", 20 + number))
        if step % 2 == 0:  # the same command from every thread
            sender.send(lambda step=step: adjust(f"common-{step}", SHARED, 40 + step))


def prepare(target: str, extra_env: dict[str, str]) -> None:
    app = open_store(target, create=True, extra_env=extra_env)
    try:
        app.initialise("Europe/Paris")
        app.register_practitioner(command_id="setup-dr", at=AT, actor="admin",
                                  practitioner_id="dr-ada", name="Ada", role="physician",
                                  license_number="L-1", license_expires_on="2030-01-01")
        app.open_course(command_id="setup-open", at=AT, actor="admin", course_id=SHARED,
                        patient_ref="P-shared", indication="skin_rejuvenation")
        app.record_consultation(command_id="setup-consult", at=AT, actor="dr-ada",
                                course_id=SHARED, consent=True, screening=SCREENING)
    finally:
        app.close()


def run_threads(target: str, extra_env: dict[str, str]) -> list[Sender]:
    host = Host(target, extra_env)
    barrier = threading.Barrier(THREADS)
    senders = [Sender(host, n) for n in range(THREADS)]
    errors: list[BaseException] = []

    def main(number: int) -> None:
        try:
            thread_plan(senders[number], number, barrier)
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=main, args=(n,)) for n in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=TIMEOUT)
        assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
        if errors:
            raise errors[0]
    finally:
        host.close_all()
    assert len(host.opened) == THREADS  # one instance per thread, none shared
    return senders


def test_threads_with_a_coursebook_each_lose_nothing_and_apply_each_command_once(
        store: tuple[str, dict[str, str]], capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture, observed: Callable[[str], None]) -> None:
    target, extra_env = store
    caplog.set_level("WARNING", logger="coursebook")
    prepare(target, extra_env)
    started = time.perf_counter()
    senders = run_threads(target, extra_env)
    took = time.perf_counter() - started
    records = [r for s in senders for r in s.records]

    # Every command ended applied once, as a duplicate, or refused CONFLICT and retried.
    applied = Counter(r["command_id"] for r in records if r["status"] == "applied")
    sent = {r["command_id"] for r in records}
    assert set(applied) == sent
    assert all(n == 1 for n in applied.values()), {c: n for c, n in applied.items() if n > 1}
    assert {r["status"] for r in records} <= {"applied", "duplicate", "rejected"}
    assert all(r["status"] == "duplicate" for r in records if r.get("resend"))
    commons = [r for r in records if r["command_id"].startswith("common-")
               and r["status"] != "rejected"]
    assert len(commons) >= THREADS * len(range(0, STEPS, 2))
    conflicts = sum(s.conflicts for s in senders)
    assert conflicts > 0, "no CONFLICT observed: the threads did not really overlap"

    # No lost or doubled event: each course's applied versions run 1..n, and it holds
    # exactly the events of the commands applied on it.
    versions: dict[str, list[int]] = defaultdict(list)
    for r in records:
        if r["status"] == "applied":
            versions[r["subject"]].append(r["version"])
    app = open_store(target, extra_env=extra_env)  # a fresh instance: it caught up nothing
    try:
        status = app.views_status()
        assert all(view["up_to_date"] for view in status), status
        for course_id in [SHARED, *(f"T{n}" for n in range(THREADS))]:
            first = 3 if course_id == SHARED else 1  # SHARED: opened and consulted before
            assert sorted(versions[course_id]) == list(
                range(first, first + len(versions[course_id]))), course_id
            stored = app.course_events(course_id)
            assert len(stored) == app.get_course(course_id)["version"] \
                == first - 1 + len(versions[course_id])
        course_events = sum(app.get_course(c)["version"]
                            for c in [SHARED, *(f"T{n}" for n in range(THREADS))])
        unsealed = (app.recorder.max_notification_id() or 0) - app.seal_chain.table.tracked()
        verified = app.verify()
        assert verified["ok"], verified["problems"]
        calendar, audit = app.calendar(), app.audit()
    finally:
        app.close()

    # The views equal a rebuild from zero.
    rebuilt = open_store(target, extra_env=extra_env)
    try:
        rebuilt.rebuild_views()
        assert rebuilt.audit() == audit
        assert rebuilt.calendar() == calendar
        # the clinic's settings, its catalogue adopted at init, the practitioner
        assert len(audit) == 3 + course_events
    finally:
        rebuilt.close()

    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    # The only warning tolerated: a write whose sealing or view catch-up the store did
    # not answer (the command stays applied; the next write or query completes it).
    warnings = [r.getMessage() for r in caplog.records if r.levelname != "INFO"]
    deferred = warnings.count("after_write outcome=deferred error=OperationalError")
    assert len(warnings) == deferred, warnings
    observed(f"{THREADS} threads, {len(sent)} commands, {conflicts} CONFLICT retries, "
             f"{sum(s.unavailable for s in senders)} store-unavailable retries, "
             f"{sum(1 for r in records if r.get('resend'))} resends, {deferred} "
             f"after-write catch-ups deferred, {unsealed} events left unsealed at the end, "
             f"{took:.1f} s")
    assert took < 20, f"{took:.1f} s"
