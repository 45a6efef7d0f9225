"""Recall of a lot: every session given with it, on every store kind.

- The answer for a small clinic: sessions by valid time then course, the lot compared
  trimmed, the product shown the one with that lot, each course's status and each
  patient's erasure as of the moment asked about (valid and record time), patients by
  pseudonym only; an unknown lot lists nothing; an empty one is refused.
- Property: for random stores (sessions with lots spelled with and without spaces, late
  and back-dated facts, pauses, completions, discontinuations, an erasure), the recall of
  every lot at every moment equals a brute-force scan of the stored events, live and
  after the views are rebuilt from zero.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coursebook.clock import FixedClock
from coursebook.domain.course_state import CourseState
from coursebook.domain.ids import patient_uuid
from coursebook.domain.selection import select_events
from coursebook.errors import Code, Rejected
from coursebook.projections.course_view import iso
from coursebook.service.application import Coursebook
from tests.builders import DAY, PATIENT, Clinic, day, product, rejected
from tests.stores import START, make_app


def keys(document: dict[str, Any]) -> list[tuple[str, int]]:
    return [(s["course_id"], s["session_no"]) for s in document["sessions"]]


def a_clinic(app: Coursebook, clock: FixedClock) -> dict[str, dt.datetime]:
    """Three courses, two patients; lot HA-1 used in four sessions (once spelled with
    spaces, once beside another lot); P2 erased; returns record times to ask about."""
    clinic = Clinic(app)
    clinic.ready("C1")
    clinic.ready("C2", patient_ref="P2")
    clinic.ready("C3", indication="fat_reduction")  # P1's second course
    clinic.give("C1", at=day(1), products=[product(lot="HA-1")])
    clinic.give("C2", at=day(1), actor="nurse-bo", products=[product(lot="HA-1")])
    clinic.give("C2", at=day(20), products=[product(name="PN", lot="PN-7")])
    known: dict[str, dt.datetime] = {"before C3": clock.now()}
    clock.set(clock.now() + DAY)
    clinic.give("C3", at=day(5), products=[product(lot="HA-1")])
    clinic.give("C1", at=day(22), products=[product(name="PN", lot="PN-7"),
                                            product(name="HA again", lot=" HA-1 ")])
    clinic.run("discontinue_course", at=day(30), course_id="C2", reason="moved away")
    clinic.run("erase_patient", at=day(40), actor="dpo", patient_ref="P2",
               reason="erasure request 12")
    return known


def test_a_recall_lists_every_session_with_the_lot_as_of_now(
        app: Coursebook, clock: FixedClock) -> None:
    a_clinic(app, clock)
    document = app.recall("HA-1")
    assert keys(document) == [("C1", 1), ("C2", 1), ("C3", 1), ("C1", 2)]
    assert (document["lot"], document["courses"], document["patients"]) == ("HA-1", 3, 2)
    assert document["as_of"] == iso(clock.now())
    first, second, third, fourth = document["sessions"]
    assert first == {"course_id": "C1", "session_no": 1, "at": "2026-09-02T07:00:00Z",
                     "actor": "dr-ada", "patient_ref": "P1",
                     "product": {"name": "NCTF 135 HA", "lot": "HA-1",
                                 "expires_on": "2027-12-31"},
                     "course_status": "active", "patient_erased": False}
    assert (second["actor"], second["patient_ref"], second["course_status"],
            second["patient_erased"]) == ("nurse-bo", "P2", "discontinued", True)
    assert third["course_status"] == "active"
    assert fourth["product"] == {"name": "HA again", "lot": " HA-1 ",
                                 "expires_on": "2027-12-31"}  # the one with that lot
    assert "Jeanne" not in str(document)
    assert "1984" not in str(document)


def test_the_lot_asked_for_is_trimmed_and_an_unknown_lot_lists_nothing(
        app: Coursebook, clock: FixedClock) -> None:
    a_clinic(app, clock)
    assert app.recall("  HA-1\t") == app.recall("HA-1")
    assert keys(app.recall("PN-7")) == [("C2", 2), ("C1", 2)]
    assert app.recall("ha-1")["sessions"] == []  # lots are compared exactly otherwise
    empty = app.recall("NO-SUCH-LOT")
    assert {k: empty[k] for k in ("lot", "sessions", "courses", "patients")} == {
        "lot": "NO-SUCH-LOT", "sessions": [], "courses": 0, "patients": 0}
    with rejected(Code.INVALID, "lot"):
        app.recall("   ")
    with rejected(Code.INVALID, "as_of"):
        app.recall("HA-1", as_of="2026-09-01T09:00:00")


def test_as_of_a_moment_the_status_and_erasure_are_those_of_that_moment(
        app: Coursebook, clock: FixedClock) -> None:
    a_clinic(app, clock)
    document = app.recall("HA-1", as_of=day(10))
    assert keys(document) == [("C1", 1), ("C2", 1), ("C3", 1)]
    assert [(s["course_status"], s["patient_erased"]) for s in document["sessions"]] == [
        ("active", False)] * 3
    later = app.recall("HA-1", as_of=day(35))
    assert [(s["course_id"], s["course_status"], s["patient_erased"])
            for s in later["sessions"]][1] == ("C2", "discontinued", False)


def test_as_known_at_a_moment_later_records_are_left_out(
        app: Coursebook, clock: FixedClock) -> None:
    known = a_clinic(app, clock)
    document = app.recall("HA-1", known_at=known["before C3"])
    assert keys(document) == [("C1", 1), ("C2", 1)]
    assert [(s["course_status"], s["patient_erased"]) for s in document["sessions"]] == [
        ("active", False), ("active", False)]
    assert (document["courses"], document["patients"]) == (2, 2)


def test_a_recall_records_nothing(app: Coursebook, clock: FixedClock) -> None:
    a_clinic(app, clock)
    recorder: Any = app.recorder
    before = recorder.max_notification_id()
    app.recall("HA-1", as_of=day(10), known_at=START)
    assert recorder.max_notification_id() == before


# -- the property --------------------------------------------------------------------------
COURSES = {"C1": "P1", "C2": "P2", "C3": "P1"}
LOTS = ("A-1", " A-1", "A-1 ", "B-2", "b-2")
ASKED = ("A-1", "B-2", "b-2", "Z-9")


def brute_force(app: Coursebook, lot: str, as_of: dt.datetime,
                known_at: dt.datetime | None) -> dict[str, Any]:
    """The recall by definition: every stored event decoded, the selected ones folded."""
    recorder: Any = app.recorder
    events = [app.mapper.to_domain_event(n) for n in recorder.select_notifications(1, 10**6)]
    facts = [e for e in events if type(e).__qualname__.startswith("TreatmentCourse.")
             or type(e).__qualname__ == "PatientRecord.Erased"]
    selected = select_events(facts, as_of=as_of, known_at=known_at)
    states: dict[Any, CourseState] = {}
    given: list[tuple[Any, Any]] = []
    for event in selected:
        name = type(event).__name__
        if name == "Opened":
            states[event.originator_id] = CourseState.start(event)
        elif name != "Erased" and event.originator_id in states:
            states[event.originator_id].apply(event)
            if name == "SessionGiven":
                given.append((event, states[event.originator_id]))
    erased = {e.originator_id for e in selected if type(e).__name__ == "Erased"}
    rows = []
    for event, state in given:
        with_lot = [p for p in event.products if p.lot.strip() == lot.strip()]
        if with_lot:
            rows.append((event.at, state, event, with_lot[0]))
    rows.sort(key=lambda r: (r[0], r[1].course_id, r[2].session_no))
    final = {state.course_id: state.status for state in states.values()}
    sessions = [{"course_id": state.course_id, "session_no": event.session_no,
                 "at": iso(event.at), "actor": event.actor,
                 "patient_ref": state.patient_ref,
                 "product": {"name": p.name, "lot": p.lot,
                             "expires_on": p.expires_on.isoformat()},
                 "course_status": final[state.course_id],
                 "patient_erased": patient_uuid(state.patient_ref) in erased}
                for _, state, event, p in rows]
    return {"lot": lot.strip(), "as_of": iso(as_of), "sessions": sessions,
            "courses": len({s["course_id"] for s in sessions}),
            "patients": len({s["patient_ref"] for s in sessions})}


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for i in range(draw(st.integers(1, 18))):
        course_id = draw(st.sampled_from(sorted(COURSES)))
        at = day(draw(st.integers(1, 70)), draw(st.integers(8, 18)))
        base = {"command_id": f"h-{i}", "at": at, "actor": "dr-ada", "course_id": course_id}
        kind = draw(st.sampled_from(["give"] * 4 + ["pause", "resume", "complete",
                                                    "discontinue", "erase"]))
        if kind == "give":
            lots = draw(st.lists(st.sampled_from(LOTS), min_size=1, max_size=2))
            body = {"command": "give_session", **base, "areas": ["face"], "dose_ml": 1.0,
                    "anaesthetic": None, "spacing_override_reason": "patient asked",
                    "products": [product(name=f"P{n}", lot=lot)
                                 for n, lot in enumerate(lots)]}
        elif kind == "erase":
            body = {"command": "erase_patient", "command_id": f"h-{i}", "at": at,
                    "actor": "dpo", "patient_ref": draw(st.sampled_from(["P1", "P2"])),
                    "reason": "erasure request"}
        else:
            body = {"command": f"{kind}_course", **base}
            if kind in ("pause", "discontinue"):
                body["reason"] = "patient asked"
        out.append((draw(st.sampled_from([0, 60, 3600, 86400])), body))
    return out


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(history=histories(), as_of_days=st.lists(st.integers(0, 75), max_size=2),
       known_steps=st.lists(st.integers(0, 18), max_size=2))
def test_recall_equals_a_brute_force_scan_of_the_events(
        tmp_path_factory: pytest.TempPathFactory, history: list[tuple[int, dict[str, Any]]],
        as_of_days: list[int], known_steps: list[int]) -> None:
    clock = FixedClock(START)
    app = make_app("sqlite", tmp_path_factory.mktemp("recall"), clock)
    try:
        clinic = Clinic(app)
        for course_id, patient_ref in COURSES.items():
            clinic.open(course_id, patient_ref=patient_ref, patient=PATIENT)
            clinic.consult(course_id)
        recorded = [clock.now()]
        for advance, body in history:
            clock.set(clock.now() + dt.timedelta(seconds=advance))
            with contextlib.suppress(Rejected):
                app.execute(body)
            recorded.append(clock.now())
        now = clock.now()
        moments = [(now, None)] + [(dt.datetime.fromisoformat(day(d, 12)), None)
                                   for d in (10, 25, 40, 55, *as_of_days)]
        moments += [(now, recorded[min(i, len(recorded) - 1)]) for i in known_steps]
        expected = {(lot, m): brute_force(app, lot, *m) for lot in ASKED for m in moments}
        for (lot, (as_of, known_at)), answer in expected.items():
            assert app.recall(lot, as_of=as_of, known_at=known_at) == answer
        app.rebuild_views("recall")
        for (lot, (as_of, known_at)), answer in expected.items():
            assert app.recall(lot, as_of=as_of, known_at=known_at) == answer
    finally:
        app.close()
