"""Record time settled at commit (docs/integrity.md, "Answers known at a past moment"),
on every store kind, step by step with fixed clocks: once an answer about a past moment
K was given, a write decided with a clock at or before K is recorded just after K, and
the answer about K stays what it was. (The same under real concurrent writers:
tests/integration/test_known_at_final.py.)"""

from __future__ import annotations

import datetime as dt

from coursebook.clock import FixedClock
from tests.builders import Clinic
from tests.stores import START

HOUR = dt.timedelta(hours=1)
TICK = dt.timedelta(microseconds=1)


def _adjust(clinic: Clinic, target_days: int) -> None:
    clinic.run("adjust_interval", at="2026-09-02T09:00:00+02:00", course_id="C1",
               min_days=7, target_days=target_days, max_days=60,
               reason="spacing changed for the test")


def test_a_write_decided_before_an_answered_moment_is_recorded_after_it(
        clinic: Clinic, clock: FixedClock) -> None:
    clinic.ready()
    known = START + HOUR / 2
    clock.set(START + HOUR)  # the reader's now: the moment asked about is past
    answer = clinic.course(known_at=known)
    clock.set(START)  # a writer whose clock is behind the moment already answered
    _adjust(clinic, 30)
    clock.set(START + HOUR)
    assert clinic.course(known_at=known) == answer
    later = clinic.course(known_at=known + TICK)
    assert later["version"] == answer["version"] + 1
    assert later["spacing"] != answer["spacing"]
    recorded = clinic.app.get_history("C1")[-1]["recorded_at"]
    assert dt.datetime.fromisoformat(recorded) == known + TICK
    clock.set(START)
    _adjust(clinic, 31)  # the cached course, built before the new stamp, is not reused
    assert clinic.course()["version"] == later["version"] + 1


def test_a_moment_not_past_yet_holds_back_no_write(clinic: Clinic, clock: FixedClock) -> None:
    clinic.ready()
    before = clinic.course(known_at=START)  # now is START: the moment is not past
    _adjust(clinic, 30)
    history = clinic.app.get_history("C1")
    assert dt.datetime.fromisoformat(history[-1]["recorded_at"]) == START
    assert clinic.course(known_at=START)["version"] == before["version"] + 1


def test_compliance_and_recall_settle_the_moment_too(clinic: Clinic,
                                                     clock: FixedClock) -> None:
    clinic.ready()
    known = START + HOUR / 2
    clock.set(START + HOUR)
    report = clinic.app.compliance(as_of=known, known_at=known)
    clock.set(START + 2 * HOUR)
    clinic.app.recall("LOT-9", as_of=START + 2 * HOUR, known_at=known + HOUR)
    clock.set(START)
    _adjust(clinic, 30)
    clinic.give(at="2026-09-02T10:00:00+02:00", products=[
        {"name": "NCTF 135 HA", "lot": "LOT-9", "expires_on": "2027-12-31"}])
    clock.set(START + 2 * HOUR)
    assert clinic.app.compliance(as_of=known, known_at=known) == report
    assert clinic.app.recall("LOT-9", as_of=START + 2 * HOUR,
                             known_at=known + HOUR)["sessions"] == []
    history = clinic.app.get_history("C1")
    assert [dt.datetime.fromisoformat(h["recorded_at"]) for h in history[-2:]] == \
        [known + HOUR + TICK] * 2
