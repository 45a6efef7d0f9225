"""Time travel (CONTRACT section 6): --version, --as-of (valid time), --known-at (record
time), on every store kind. The clock is moved between commands so that recorded times
differ from the `at` of the acts."""

from __future__ import annotations

import datetime as dt

import pytest

from coursebook.clock import FixedClock
from coursebook.errors import Code, Rejected
from tests.builders import Clinic, day, rejected
from tests.stores import START

HOUR = dt.timedelta(hours=1)


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.fixture
def late_reaction(clinic: Clinic, clock: FixedClock) -> dict[str, dt.datetime]:
    """C1 opened, consulted, session 1 given; then, a day later, a severe reaction to
    session 1 phoned in and recorded with its true (earlier) `at`.
    Returns the recorded times of each step."""
    recorded = {}
    clinic.ready()
    recorded["consulted"] = clock.now()
    clock.advance(HOUR)
    clinic.give(at=day(1))
    recorded["given"] = clock.now()
    clock.advance(24 * HOUR)
    clinic.react(at=day(2), severity=4)
    recorded["reaction"] = clock.now()
    return recorded


class TestVersion:
    def test_version_n_is_the_state_after_the_first_n_events(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        assert clinic.course(version=1)["status"] == "open"
        assert clinic.course(version=1)["version"] == 1
        assert clinic.course(version=2)["status"] == "active"
        assert clinic.course(version=2)["sessions_given"] == 0
        assert clinic.course(version=3) == clinic.course()

    def test_a_version_beyond_the_last_is_not_found(self, clinic: Clinic) -> None:
        clinic.ready()
        with pytest.raises(Rejected) as refused:
            clinic.course(version=3)
        assert (refused.value.code, refused.value.field) == (Code.NOT_FOUND, "version")

    def test_each_version_equals_the_state_shown_when_it_was_current(
            self, clinic: Clinic) -> None:
        shown = {}
        clinic.open()
        shown[1] = clinic.course()
        clinic.consult()
        shown[2] = clinic.course()
        clinic.schedule(planned_at=day(1))
        shown[3] = clinic.course()
        clinic.give(at=day(1))
        shown[4] = clinic.course()
        for version, state in shown.items():
            assert clinic.course(version=version) == state


class TestAsOf:
    def test_as_of_sees_the_events_whose_at_is_not_after_it(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        assert clinic.course(as_of=ts(day(0, 12)))["sessions_given"] == 0
        assert clinic.course(as_of=ts(day(1)))["sessions_given"] == 1

    def test_before_the_course_was_opened_is_not_found(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.NOT_FOUND):
            clinic.course(as_of=ts(day(-1)))

    def test_a_fact_recorded_late_joins_the_past_once_recorded(
            self, clinic: Clinic, late_reaction: dict[str, dt.datetime]) -> None:
        as_of = ts(day(2, 12))
        assert clinic.course(as_of=as_of)["blocked_by"] == ["REACTION_UNREVIEWED"]
        # What the clinic knew when it had only recorded the session:
        known = clinic.course(as_of=as_of, known_at=late_reaction["given"])
        assert known["blocked_by"] == []
        assert known["version"] == 3

    def test_as_of_between_the_session_and_the_reaction_excludes_the_reaction(
            self, clinic: Clinic, late_reaction: dict[str, dt.datetime]) -> None:
        assert clinic.course(as_of=ts(day(1, 12)))["blocked_by"] == []


class TestKnownAt:
    def test_known_at_sees_only_events_recorded_by_then(
            self, clinic: Clinic, late_reaction: dict[str, dt.datetime]) -> None:
        assert clinic.course(known_at=late_reaction["consulted"])["version"] == 2
        assert clinic.course(known_at=late_reaction["given"])["version"] == 3
        assert clinic.course(known_at=late_reaction["reaction"])["version"] == 4
        assert clinic.course(known_at=late_reaction["reaction"] - dt.timedelta(
            microseconds=1))["version"] == 3

    def test_before_anything_was_recorded_is_not_found(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.NOT_FOUND):
            clinic.course(known_at=START - dt.timedelta(seconds=1))

    def test_an_answer_never_changes_once_its_moment_is_past(
            self, clinic: Clinic, clock: FixedClock) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        moment = clock.now()
        answer = clinic.course(known_at=moment)
        answer_as_of = clinic.course(known_at=moment, as_of=ts(day(3)))
        clock.advance(HOUR)
        # Facts about the past, recorded after `moment`:
        clinic.react(at=day(2), severity=5)
        clinic.consult(at=day(1, 12), consent=False)
        clinic.run("adjust_interval", at=day(1, 13), course_id="C1", min_days=20,
                   target_days=25, max_days=30, reason="pace after the reaction")
        clock.advance(HOUR)
        clinic.review(at=day(3), decision="discontinue")
        assert clinic.course()["status"] == "discontinued"
        assert clinic.course(known_at=moment) == answer
        assert clinic.course(known_at=moment, as_of=ts(day(3))) == answer_as_of

    def test_known_at_and_version_combine(self, clinic: Clinic, clock: FixedClock) -> None:
        clinic.ready()
        moment = clock.now()
        clock.advance(HOUR)
        clinic.give(at=day(1))
        assert clinic.course(version=3, known_at=moment)["version"] == 2


@pytest.mark.parametrize("option", ["as_of", "known_at"])
def test_a_naive_moment_is_invalid(clinic: Clinic, option: str) -> None:
    clinic.ready()
    with rejected(Code.INVALID, option):
        clinic.course(**{option: dt.datetime(2026, 9, 2, 9)})


class TestHistory:
    def test_lists_every_version_oldest_first_with_both_clocks(
            self, clinic: Clinic, clock: FixedClock) -> None:
        clinic.open()
        clock.advance(HOUR)
        clinic.consult(actor="nurse-bo")
        history = clinic.app.get_history("C1")
        assert [(h["version"], h["event"], h["actor"]) for h in history] == [
            (1, "Opened", "admin"), (2, "ConsultationRecorded", "nurse-bo")]
        assert history[0]["at"] == "2026-09-01T06:00:00Z"
        assert history[0]["recorded_at"] == "2026-11-01T12:00:00Z"
        assert history[1]["recorded_at"] == "2026-11-01T13:00:00Z"

    def test_next_before_of_version_one_is_null(self, clinic: Clinic) -> None:
        clinic.ready()
        history = clinic.app.get_history("C1")
        assert history[0]["next_before"] is None
        assert history[0]["next_after"] is None
        assert history[1]["next_before"] is None
        assert history[1]["next_after"] == {
            "session_no": 1, "earliest": "2026-09-01", "target": "2026-09-01",
            "latest": None, "planned_at": None, "screening_valid_until": None}

    def test_a_schedule_change_shows_as_a_difference(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.schedule(planned_at=day(1))
        clinic.run("reschedule_session", at=day(0, 11), course_id="C1", session_no=1,
                   planned_at=day(2), reason="patient asked")
        history = clinic.app.get_history("C1")
        scheduled, rescheduled = history[2], history[3]
        assert scheduled["next_before"]["planned_at"] is None
        assert scheduled["next_after"]["planned_at"] == "2026-09-02T07:00:00Z"
        assert rescheduled["next_before"] == scheduled["next_after"]
        assert rescheduled["next_after"]["planned_at"] == "2026-09-03T07:00:00Z"

    def test_a_given_session_moves_the_window_to_the_next_one(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(at=day(1))
        given = clinic.app.get_history("C1")[2]
        assert given["event"] == "SessionGiven"
        assert given["next_before"]["session_no"] == 1
        assert given["next_after"] == {
            "session_no": 2, "earliest": "2026-09-16", "target": "2026-09-23",
            "latest": "2026-09-30", "planned_at": None, "screening_valid_until": None}

    def test_each_next_after_is_the_window_shown_at_that_version(
            self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.schedule(planned_at=day(1))
        clinic.give(at=day(1))
        clinic.run("adjust_interval", at=day(2), course_id="C1", min_days=20,
                   target_days=25, max_days=30, reason="pace after session one")
        for entry in clinic.app.get_history("C1"):
            assert entry["next_after"] == clinic.course(version=entry["version"])["next"]

    def test_an_unknown_course_is_not_found(self, clinic: Clinic) -> None:
        with rejected(Code.NOT_FOUND):
            clinic.app.get_history("nope")
