"""Property: every time-travel answer equals what the engine showed at that moment.

For any sequence of commands (valid and invalid mixed, on two courses, with the clock
moved between commands and facts often back-dated), the state shown right after each
command is captured. Afterwards, `--version N` must give the state captured when the
course was at version N, `--known-at T` the state captured when the clock read T, and a
fresh application over the same stored events the same final state. When acts come in
order (valid time following record time), `--as-of` each act gives the state shown
right after it. Each answer is
compared with a state shown live, never only with another replay.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from coursebook.clock import FixedClock
from coursebook.domain.ids import course_uuid
from coursebook.errors import Rejected
from coursebook.projections.course_view import course_document
from coursebook.service.application import Coursebook
from tests.builders import T0, product, screening
from tests.stores import PERSISTENT_KINDS, START, make_app, params, release, reopen

COURSES = ("C1", "C2")
ACTORS = ("dr-ada", "dr-ada", "nurse-bo", "aes-cy")


def valid_time(days: int, hour: int) -> str:
    return (T0 + dt.timedelta(days=days)).replace(hour=hour).isoformat()


@st.composite
def commands(draw: st.DrawFn) -> dict[str, Any]:
    """One command of a clinic's day: mostly plausible, sometimes wrong on purpose."""
    course_id = draw(st.sampled_from(COURSES))
    at = valid_time(draw(st.integers(0, 62)), draw(st.integers(7, 20)))  # day 61: clock
    base = {"at": at, "actor": draw(st.sampled_from(ACTORS)), "course_id": course_id}
    kind = draw(st.sampled_from(
        ["give"] * 8 + ["react"] * 3 + ["review", "schedule", "resume"] * 2 + [
            "open", "consult", "override", "adjust", "extend", "pause", "complete",
            "discontinue", "invalid", "unknown", "follow_up", "withdraw"]))
    match kind:
        case "open":
            return {"command": "open_course", **base, "actor": "admin",
                    "patient_ref": f"P-{course_id}",
                    "indication": draw(st.sampled_from(["skin_rejuvenation",
                                                        "fat_reduction", "cellulite"]))}
        case "consult":
            return {"command": "record_consultation", **base,
                    "consent": draw(st.booleans() | st.just(True)),
                    "screening": screening(
                        pregnant=draw(st.booleans()), diabetes=draw(st.booleans()),
                        medications=draw(st.sampled_from([[], ["Aspirin 75 mg"]])))}
        case "override":
            return {"command": "override_contraindication", **base, "code": "PREGNANCY",
                    "justification": "confirmed not pregnant by a blood test"}
        case "give":
            body = {"command": "give_session", **base, "products": [product()],
                    "areas": ["face"], "dose_ml": draw(st.sampled_from([1, 2.5, 0])),
                    "anaesthetic": None}
            if draw(st.booleans()):
                body["spacing_override_reason"] = "patient travels abroad soon"
            if draw(st.booleans()):
                body["aftercare"] = "AC-FACE v1"
            return body
        case "schedule":
            planned = valid_time(draw(st.integers(0, 120)), 10)
            return {"command": "schedule_session", **base,
                    "planned_at": max(planned, at)}
        case "react":
            return {"command": "report_reaction", **base,
                    "session_no": draw(st.integers(1, 3)),
                    "kind": draw(st.sampled_from(["swelling", "infection"])),
                    "severity": draw(st.integers(1, 5))}
        case "review":
            return {"command": "review_reaction", **base,
                    "session_no": draw(st.integers(1, 3)),
                    "decision": draw(st.sampled_from(["continue", "continue",
                                                      "discontinue"]))}
        case "adjust":
            low = draw(st.integers(1, 30))
            return {"command": "adjust_interval", **base, "min_days": low,
                    "target_days": low + 5, "max_days": low + 10,
                    "reason": "response to the last session"}
        case "extend":
            return {"command": "extend_plan", **base,
                    "planned_sessions": draw(st.integers(1, 8)), "reason": "response"}
        case "pause":
            return {"command": "pause_course", **base, "reason": "holiday"}
        case "resume":
            return {"command": "resume_course", **base}
        case "complete":
            return {"command": "complete_course", **base}
        case "discontinue":
            return {"command": "discontinue_course", **base, "reason": "moved away"}
        case "follow_up":
            return {"command": "record_follow_up", **base,
                    "session_no": draw(st.integers(1, 2)),
                    "outcome": draw(st.sampled_from(["as_expected", "concern"]))}
        case "withdraw":
            return {"command": "withdraw_consent", **base}
        case "invalid":
            return {"command": "give_session", **base, "at": at[:19], "products": []}
        case _:
            return {"command": "rebook_session", **base}


@st.composite
def steps(draw: st.DrawFn) -> list[tuple[int, dict[str, Any]]]:
    """(seconds the clock moves first, command) pairs; ids fresh or, at times, re-sent."""
    out: list[tuple[int, dict[str, Any]]] = []
    for i in range(draw(st.integers(1, 25))):
        advance = draw(st.sampled_from([0, 1, 60, 3600, 86400]))
        if out and draw(st.integers(0, 9)) == 0:
            earlier = draw(st.sampled_from(out))[1]
            body = dict(earlier) if draw(st.booleans()) else {**draw(commands()),
                                                              "command_id":
                                                              earlier["command_id"]}
        else:
            body = {**draw(commands()), "command_id": f"p-{i}"}
        out.append((advance, body))
    return out


def opening_steps() -> list[tuple[int, dict[str, Any]]]:
    """Staff registered, both courses opened and consulted, an hour apart."""
    bodies: list[dict[str, Any]] = [
        {"command": "register_practitioner", "command_id": f"reg-{pid}",
         "at": valid_time(-30, 9), "actor": "admin", "practitioner_id": pid, "name": pid,
         "role": role, "license_number": "L", "license_expires_on": "2030-01-01"}
        for pid, role in (("dr-ada", "physician"), ("nurse-bo", "nurse"),
                          ("aes-cy", "aesthetician"))]
    bodies += [{"command": "open_course", "command_id": f"open-{course_id}",
                "at": valid_time(0, 8), "actor": "admin", "course_id": course_id,
                "patient_ref": f"P-{course_id}", "indication": indication}
               for course_id, indication in zip(COURSES, ("skin_rejuvenation", "cellulite"),
                                                strict=True)]
    bodies += [{"command": "record_consultation", "command_id": f"consult-{course_id}",
                "at": valid_time(0, 9), "actor": "dr-ada", "course_id": course_id,
                "consent": True, "screening": screening()} for course_id in COURSES]
    return [(3600, body) for body in bodies]


def live_document(app: Coursebook, course_id: str) -> dict[str, Any]:
    """The state held by the course aggregate itself, rendered as `course show` would."""
    aggregate = app.repository.get(course_uuid(course_id))
    return course_document(aggregate.state, app.zone, erased=False, shredded=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=steps())
def test_time_travel_answers_equal_the_states_shown_at_the_time(
        sequence: list[tuple[int, dict[str, Any]]]) -> None:
    check_replays("memory", sequence)


EXAMPLES = {"sqlite": 20, "postgres": 6}
"""Fewer examples on disk (each command is a durable transaction there), fewer still on
PostgreSQL (each query is a round trip to the server)."""


@pytest.mark.parametrize("kind", params(PERSISTENT_KINDS))
def test_time_travel_answers_and_a_fresh_process_equal_the_states_shown_at_the_time(
        kind: str) -> None:
    @settings(max_examples=EXAMPLES[kind], deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(sequence=steps())
    def replays(sequence: list[tuple[int, dict[str, Any]]]) -> None:
        check_replays(kind, sequence)

    replays()


def check_replays(kind: str, sequence: list[tuple[int, dict[str, Any]]]) -> None:
    with tempfile.TemporaryDirectory(prefix="coursebook-property-") as tmp:
        clock = FixedClock(START)
        app = make_app(kind, Path(tmp), clock, catalogue="default@2")
        try:
            by_version: dict[str, dict[int, dict[str, Any]]] = {c: {} for c in COURSES}
            by_time: dict[str, dict[dt.datetime, dict[str, Any]]] = {c: {} for c in COURSES}
            for advance, body in opening_steps() + sequence:
                clock.advance(dt.timedelta(seconds=advance))
                head = app.recorder.max_notification_id()
                try:
                    outcome = app.execute(body)
                except Rejected as refused:
                    event(f"refused {refused.code}")
                    # Nothing but the refusal, remembered (not a CONFLICT).
                    # (Counted: PostgreSQL's ids may skip.)
                    grown = len(app.recorder.select_notifications((head or 0) + 1, 10))
                    remembered = refused.code != "CONFLICT"
                    assert grown <= int(remembered)
                else:
                    event(f"{outcome.status} {outcome.command}")
                    grew = app.recorder.max_notification_id() != head
                    assert grew == (outcome.status == "applied")
                for course_id in COURSES:
                    try:
                        shown = app.get_course(course_id)
                    except Rejected:
                        continue
                    assert shown == live_document(app, course_id)
                    seen = by_version[course_id].setdefault(shown["version"], shown)
                    assert seen == shown, "a version's state changed after the fact"
                    by_time[course_id][clock.now()] = shown

            readers = [app]
            fresh = reopen(kind, Path(tmp), clock)
            if fresh is not None:
                readers.append(fresh)
            try:
                for reader in readers:
                    for course_id in COURSES:
                        for version, shown in by_version[course_id].items():
                            assert reader.get_course(course_id, version=version) == shown
                        for moment, shown in by_time[course_id].items():
                            assert reader.get_course(course_id, known_at=moment) == shown
                        if by_version[course_id]:
                            last = by_version[course_id][max(by_version[course_id])]
                            assert reader.get_course(course_id) == last
            finally:
                if fresh is not None:
                    fresh.close()
        finally:
            app.close()
            release(kind, Path(tmp))


@st.composite
def steps_in_order(draw: st.DrawFn) -> list[tuple[int, dict[str, Any]]]:
    """Like `steps`, but each act happens after the one before (valid time follows
    record time), so the state shown after each act is what `--as-of` that act must give."""
    moment = T0.replace(hour=12)
    out = []
    for advance, body in draw(steps()):
        moment += dt.timedelta(hours=draw(st.sampled_from([1, 5, 24, 24 * 8, 24 * 15])))
        body = {**body, "at": moment.isoformat()}
        if "planned_at" in body:
            body["planned_at"] = max(body["planned_at"], body["at"])
        out.append((advance, body))
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=steps_in_order())
def test_as_of_answers_equal_the_states_shown_when_acts_come_in_order(
        sequence: list[tuple[int, dict[str, Any]]]) -> None:
    with tempfile.TemporaryDirectory(prefix="coursebook-property-") as tmp:
        clock = FixedClock(START)
        app = make_app("memory", Path(tmp), clock, catalogue="default@2")
        try:
            by_at: dict[str, dict[dt.datetime, dict[str, Any]]] = {c: {} for c in COURSES}
            for advance, body in opening_steps() + sequence:
                clock.advance(dt.timedelta(seconds=advance))
                try:
                    outcome = app.execute(body)
                except Rejected:
                    continue
                if outcome.status != "applied":
                    continue
                event(f"applied {outcome.command}")
                for course_id in COURSES:
                    try:
                        by_at[course_id][dt.datetime.fromisoformat(body["at"])] = \
                            app.get_course(course_id)
                    except Rejected:
                        continue
            for course_id in COURSES:
                for moment, shown in by_at[course_id].items():
                    assert app.get_course(course_id, as_of=moment) == shown
        finally:
            app.close()
