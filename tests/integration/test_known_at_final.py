"""An answer given `--known-at K` once K is past never changes, under concurrent writers.

Two writers keep committing, each to its course (one of them on a host whose clock runs 50 ms
behind, so its events are stamped well before they commit); a reader keeps asking about
K just past its own now (`course show` and `compliance` as known at K), and once the
writers have stopped asks every K again: every later answer must be the first one. The
run must also have seen the writers move the courses between the reader's questions
(otherwise it proved nothing).

Without the known horizon (adapters/storage/record_time.py) an event decided before K
and committed after the reader's answer appears in the later one.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from coursebook.bootstrap import open_store
from coursebook.clock import SystemClock
from coursebook.service.application import Coursebook
from tests.builders import SCREENING_ALL_NO, command
from tests.stores import PG_TEST_ENV

COURSES = ["K1", "K2"]
ROUNDS = 30
MIN_MOVED = 10
MAX_ROUNDS = 2000
"""The reader asks about at least ROUNDS moments, and goes on (up to MAX_ROUNDS) until the
writers have moved the courses by MIN_MOVED versions meanwhile."""
LAG = dt.timedelta(milliseconds=50)
AT = "2024-03-06T10:00:00+01:00"


class LaggingClock:
    """The clock of a host running `LAG` behind the others."""

    def now(self) -> dt.datetime:
        return SystemClock().now() - LAG


def _open(target: str, clock: Any, *, create: bool = False) -> Coursebook:
    extra = PG_TEST_ENV if target.startswith("postgresql") else None
    return open_store(target, create=create, clock=clock, extra_env=extra)


def _prepare(target: str) -> None:
    app = _open(target, SystemClock(), create=True)
    try:
        app.initialise("Europe/Paris")
        app.execute(command("register_practitioner", at=AT, actor="admin",
                            practitioner_id="dr-ada", name="Ada", role="physician",
                            license_number="L-1", license_expires_on="2030-01-01"))
        for n, course_id in enumerate(COURSES):
            app.execute(command("open_course", at=AT, actor="admin", course_id=course_id,
                                patient_ref=f"P{n}", indication="skin_rejuvenation"))
            app.execute(command("record_consultation", at=AT, course_id=course_id,
                                consent=True, screening=SCREENING_ALL_NO))
    finally:
        app.close()


def _writer(target: str, clock: Any, course_id: str, stop: threading.Event,
            errors: list[BaseException]) -> None:
    app = _open(target, clock)
    try:
        n = 0
        while not stop.is_set():
            n += 1
            app.execute(command("adjust_interval", at=AT, command_id=f"{course_id}-{n}",
                                course_id=course_id, min_days=7,
                                target_days=7 + n % 40, max_days=60,
                                reason="known-at finality test"))
    except BaseException as error:
        errors.append(error)
    finally:
        app.close()


def _moved(asked: list[tuple[dt.datetime, dict[str, Any]]]) -> int:
    """Versions the writers added between the first and the last moment asked about."""
    def total(answers: dict[str, Any]) -> int:
        return sum(answers[course]["version"] for course in COURSES)
    return total(asked[-1][1]) - total(asked[0][1]) if asked else 0


def _answers(app: Coursebook, known: dt.datetime) -> dict[str, Any]:
    found: dict[str, Any] = {c: app.get_course(c, known_at=known) for c in COURSES}
    found["compliance"] = app.compliance(as_of=known, known_at=known)
    return found


def test_an_answer_known_at_a_past_moment_never_changes(shared_target: str,
                                                        observed: Callable[[str], None]
                                                        ) -> None:
    _prepare(shared_target)
    stop, errors = threading.Event(), []
    writers = [threading.Thread(target=_writer, args=(shared_target, clock, course_id,
                                                      stop, errors))
               for clock, course_id in zip((SystemClock(), LaggingClock()), COURSES,
                                           strict=True)]
    reader_clock = SystemClock()
    reader = _open(shared_target, reader_clock)
    first: list[tuple[dt.datetime, dict[str, Any]]] = []
    try:
        for writer in writers:
            writer.start()
        while len(first) < MAX_ROUNDS and (len(first) < ROUNDS
                                           or _moved(first) < MIN_MOVED):
            known = reader_clock.now() - dt.timedelta(microseconds=1)  # just past
            first.append((known, _answers(reader, known)))
        stop.set()
        for writer in writers:
            writer.join(60)
        assert not errors, errors
        changed = [(known, course) for known, answers in first
                   for course, answer in _answers(reader, known).items()
                   if answer != answers[course]]
    finally:
        stop.set()
        reader.close()
    observed(f"{len(first)} moments asked, the courses moved {_moved(first)} versions "
             f"between the first and the last; {len(changed)} answers changed")
    assert _moved(first) >= MIN_MOVED, "the writers hardly wrote: nothing was proved"
    assert changed == []
