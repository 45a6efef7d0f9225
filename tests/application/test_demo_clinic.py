"""The demo clinic's story, applied to an in-memory store with a fixed "now"."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from coursebook.adapters.entrypoints.demo import DemoRun, build_demo
from coursebook.adapters.entrypoints.sample_clinic import DEMO_ZONE, FEATURED_COURSE
from coursebook.clock import FixedClock
from coursebook.domain.commands import FACT_COMMANDS
from coursebook.domain.course import TreatmentCourse
from coursebook.service.application import Coursebook

NOW = dt.datetime(2026, 11, 23, 11, 30, tzinfo=dt.UTC)


def built(now: dt.datetime) -> DemoRun:
    clock = FixedClock(now - dt.timedelta(days=400))
    app = Coursebook(clock=clock)
    app.initialise(DEMO_ZONE, "default@1")
    script, results = build_demo(app, clock, now)
    return DemoRun(app, ":memory:", now, script, results)


@pytest.fixture(scope="module")
def demo() -> DemoRun:
    return built(NOW)


def states(run: DemoRun) -> dict[str, dict[str, Any]]:
    return {course_id: run.app.get_course(course_id) for course_id in run.course_ids}


@pytest.mark.parametrize("now", [
    NOW,
    dt.datetime(2027, 3, 29, 0, 5, tzinfo=dt.UTC),   # just after the spring clock change
    dt.datetime(2027, 7, 1, 22, 30, tzinfo=dt.UTC),  # already tomorrow in the clinic
])
def test_every_command_meets_the_outcome_the_story_intends(now: dt.datetime) -> None:
    run = built(now)
    unexpected = [(r.step.body["command_id"], r.step.expect, r.outcome, r.code, r.message)
                  for r in run.results if not r.as_intended]
    assert unexpected == []


def test_the_demo_shows_the_rejection_codes_a_clinic_meets(demo: DemoRun) -> None:
    codes = {r.code for r in demo.results if r.outcome == "rejected"}
    assert {"TOO_SOON", "NOT_AUTHORIZED", "ALLERGEN", "CONTRAINDICATED", "FUTURE_FACT",
            "NO_CONSENT", "REACTION_UNREVIEWED", "LOT_EXPIRED", "PLAN_EXCEEDED"} <= codes


def test_a_command_sent_twice_is_a_duplicate_not_a_second_fact(demo: DemoRun) -> None:
    assert Counter(r.outcome for r in demo.results)["duplicate"] == 1


def test_dozens_of_courses_cover_every_indication_and_status(demo: DemoRun) -> None:
    shown = states(demo)
    assert 40 <= len(shown) <= 60
    assert {s["indication"] for s in shown.values()} == {
        "skin_rejuvenation", "hair_restoration", "fat_reduction", "cellulite", "pigmentation"}
    assert {s["status"] for s in shown.values()} == {
        "open", "active", "paused", "maintenance", "completed", "discontinued"}


def test_no_fact_lies_after_now(demo: DemoRun) -> None:
    applied_facts = [r.step for r in demo.results
                     if r.outcome == "applied" and r.step.command in FACT_COMMANDS]
    assert applied_facts
    assert all(step.at <= NOW for step in applied_facts)


def test_booked_sessions_lie_in_the_coming_weeks(demo: DemoRun) -> None:
    planned = [dt.datetime.fromisoformat(s["next"]["planned_at"])
               for s in states(demo).values() if s["next"] and s["next"]["planned_at"]]
    assert len(planned) >= 10
    assert all(NOW < at <= NOW + dt.timedelta(days=45) for at in planned)


def test_events_are_recorded_in_story_order_and_never_after_now(demo: DemoRun) -> None:
    notifications = demo.app.recorder.select_notifications(start=1, limit=100_000)
    recorded = [demo.app.mapper.to_domain_event(n).timestamp for n in notifications]
    assert recorded == sorted(recorded)
    assert recorded[-1] <= NOW
    assert recorded[0] < NOW - dt.timedelta(days=200)


def test_sessions_follow_the_protocol_spacing_with_a_few_stated_overrides(
        demo: DemoRun) -> None:
    sessions = [e for course_id in demo.course_ids for e in demo.app.course_events(course_id)
                if isinstance(e, TreatmentCourse.SessionGiven) and e.rule is not None]
    assert len(sessions) > 150
    short = [e for e in sessions if e.gap_days < e.rule.min_days]
    assert short
    assert all(e.spacing_override_reason for e in short)
    assert len(short) <= 3
    gaps = {e.gap_days for e in sessions}
    assert len(gaps) > 5  # jitter: not every gap is the protocol's target


def test_the_featured_course_was_refused_then_overridden_and_reviewed(
        demo: DemoRun) -> None:
    course = demo.app.get_course(FEATURED_COURSE)
    events = [h["event"] for h in demo.app.get_history(FEATURED_COURSE)]
    assert course["contraindications"]["overridden"] == ["BLEEDING_DISORDER"]
    assert course["status"] == "active"
    assert course["next"]["planned_at"] is not None
    assert {"ContraindicationOverridden", "ReactionReported", "ReactionReviewed",
            "SessionRescheduled"} <= set(events)
    refused = [r.code for r in demo.results
               if r.step.subject == FEATURED_COURSE and r.outcome == "rejected"]
    assert refused == ["CONTRAINDICATED"]


def test_one_severe_reaction_awaits_review_past_48_hours(demo: DemoRun) -> None:
    waiting = [course_id for course_id, s in states(demo).items()
               if "REACTION_UNREVIEWED" in s["blocked_by"]]
    assert len(waiting) == 1
    reactions = [e for e in demo.app.course_events(waiting[0])
                 if isinstance(e, TreatmentCourse.ReactionReported) and e.severity >= 3]
    assert reactions[-1].at < NOW - dt.timedelta(hours=48)


def test_one_licence_expires_within_30_days_and_one_has_expired(demo: DemoRun) -> None:
    today = NOW.date()
    left = sorted((s.license_expires_on - today).days for s in demo.script.staff)
    assert sum(1 for days in left if days < 0) == 1
    assert sum(1 for days in left if 0 <= days <= 30) == 1


def test_the_same_now_gives_the_same_story() -> None:
    first, second = built(NOW), built(NOW)
    assert [s.body for s in first.script.steps] == [s.body for s in second.script.steps]
