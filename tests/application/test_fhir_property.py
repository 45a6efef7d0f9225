"""Properties of `export_fhir` over random histories.

For any sequence of commands on two courses (valid and refused mixed, facts often
back-dated, the clock moving between commands, patients erased at any point):

- the export never fails, and its bundle passes `tests.fhir_checks.check_bundle`
  (`fhir.resources` models, a lossless round trip, the R4 JSON Schema, every reference
  inside the bundle), with and without personal data;
- without `include_personal` it holds no personal value (every one drawn here carries a
  marker), and with it none of a patient erased by then;
- `--known-at T` exports what a store that was sent only the commands up to T exports.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from coursebook.clock import FixedClock
from coursebook.service.application import Coursebook
from tests.builders import T0, product, screening
from tests.fhir_checks import check_bundle, resources
from tests.stores import START

COURSES = ("C1", "C2")
MARK = "ZQX"  # in every personal value drawn, and nowhere else
BORN = "1911-11-11"


def valid_time(days: int, hour: int) -> str:
    return (T0 + dt.timedelta(days=days)).replace(hour=hour).isoformat()


def personal(patient_ref: str, what: str) -> str:
    return f"{MARK}-{patient_ref}-{what}"


@st.composite
def commands(draw: st.DrawFn) -> dict[str, Any]:
    course_id = draw(st.sampled_from(COURSES))
    patient_ref = f"P-{course_id}"
    at = valid_time(draw(st.integers(0, 60)), draw(st.integers(7, 20)))
    base = {"at": at, "actor": draw(st.sampled_from(["dr-ada", "dr-ada", "nurse-bo",
                                                     "admin"])), "course_id": course_id}
    kind = draw(st.sampled_from(
        ["give"] * 6 + ["react"] * 6 + ["schedule"] * 3 + [
            "review", "review", "consult", "override", "reschedule", "cancel", "adjust",
            "extend", "pause", "resume", "complete", "discontinue", "erase", "invalid",
            "withdraw"] + ["follow_up"] * 5))
    match kind:
        case "consult":
            return {"command": "record_consultation", **base, "consent": draw(st.booleans()),
                    "screening": screening(
                        pregnant=draw(st.booleans()), diabetes=draw(st.booleans()),
                        allergies=[personal(patient_ref, "allergy")],
                        medications=[personal(patient_ref, "medication")],
                        notes=personal(patient_ref, "screening note"))}
        case "override":
            return {"command": "override_contraindication", **base, "code": "PREGNANCY",
                    "justification": "confirmed not pregnant by a blood test"}
        case "give":
            return {"command": "give_session", **base,
                    "products": [product(lot=draw(st.sampled_from(["L1", "L2"])))],
                    "areas": draw(st.sampled_from([["face"], ["neck", "face"]])),
                    "dose_ml": draw(st.sampled_from([1, 2.5])),
                    "anaesthetic": draw(st.sampled_from([None, "lidocaine"])),
                    "aftercare": "AC-1 v2",
                    **({"spacing_override_reason": "patient travels abroad soon"}
                       if draw(st.booleans()) else {})}
        case "schedule":
            planned = valid_time(draw(st.integers(0, 120)), 10)
            return {"command": "schedule_session", **base, "planned_at": max(planned, at),
                    **({"practitioner_id": "nurse-bo"} if draw(st.booleans()) else {})}
        case "reschedule" | "cancel":
            body = {"command": f"{kind}_session", **base,
                    "session_no": draw(st.integers(1, 3)), "reason": "room change"}
            if kind == "reschedule":
                body["planned_at"] = valid_time(draw(st.integers(30, 120)), 11)
            return body
        case "react":
            return {"command": "report_reaction", **base, "session_no": draw(st.integers(1, 2)),
                    "at": valid_time(draw(st.integers(30, 60)), 20),
                    "kind": draw(st.sampled_from(["swelling", "nodules"])),
                    "severity": draw(st.integers(1, 5)),
                    **({"notes": personal(patient_ref, "reaction note")}
                       if draw(st.booleans()) else {})}
        case "review":
            return {"command": "review_reaction", **base, "session_no": draw(st.integers(1, 3)),
                    "decision": draw(st.sampled_from(["continue", "discontinue"])),
                    "notes": personal(patient_ref, "review note")}
        case "adjust":
            low = draw(st.integers(1, 20))
            return {"command": "adjust_interval", **base, "min_days": low,
                    "target_days": low + 5, "max_days": low + 10,
                    "reason": "response to the last session"}
        case "extend":
            return {"command": "extend_plan", **base, "planned_sessions": draw(st.integers(1, 9)),
                    "reason": "good response"}
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
                    "at": valid_time(draw(st.integers(30, 60)), 19),
                    "outcome": draw(st.sampled_from(["as_expected", "concern"])),
                    "notes": personal(patient_ref, "follow-up note")}
        case "withdraw":
            return {"command": "withdraw_consent", **base, "reason": "by letter"}
        case "erase":
            return {"command": "erase_patient", "at": at, "actor": "admin",
                    "patient_ref": patient_ref, "reason": "the patient asked"}
        case _:
            return {"command": "give_session", **base, "at": at[:19], "products": []}


def opening() -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = [
        {"command": "register_practitioner", "command_id": f"reg-{pid}",
         "at": valid_time(-30, 9), "actor": "admin", "practitioner_id": pid,
         "name": personal("staff", pid), "role": role, "license_number": f"L-{pid}",
         "license_expires_on": "2030-01-01"}
        for pid, role in (("dr-ada", "physician"), ("nurse-bo", "nurse"))]
    bodies += [{"command": "open_course", "command_id": f"open-{course_id}",
                "at": valid_time(0, 8), "actor": "admin", "course_id": course_id,
                "patient_ref": f"P-{course_id}", "indication": "skin_rejuvenation",
                "patient": {"name": personal(f"P-{course_id}", "name"), "birth_date": BORN}}
               for course_id in COURSES]
    bodies += [{"command": "record_consultation", "command_id": f"consult-{course_id}",
                "at": valid_time(0, 9), "actor": "dr-ada", "course_id": course_id,
                "consent": True, "screening": screening(
                    allergies=[personal(f"P-{course_id}", "allergy")],
                    notes=personal(f"P-{course_id}", "screening note"))}
               for course_id in COURSES]
    return bodies


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[int, dict[str, Any]]]:
    """(minutes the clock moves first, command) pairs."""
    out = [(60, body) for body in opening()]
    for i in range(draw(st.integers(1, 30))):
        out.append((draw(st.sampled_from([0, 1, 60, 1440])),
                    {**draw(commands()), "command_id": f"h-{i}"}))
    return out


def run(history: list[tuple[int, dict[str, Any]]]) -> tuple[Coursebook, list[dt.datetime]]:
    """A fresh in-memory store sent `history`; the clock's reading at each command."""
    clock = FixedClock(START)
    app = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    app.initialise("Europe/Paris")
    times = []
    for minutes, body in history:
        clock.advance(dt.timedelta(minutes=minutes))
        times.append(clock.now())
        app.import_lines([json.dumps(body)])
    return app, times


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=histories())
def test_the_export_never_fails_and_never_leaks(history: list[tuple[int, dict[str, Any]]],
                                                ) -> None:
    app, _ = run(history)
    try:
        plain = app.export_fhir()
        check_bundle(plain)
        for kind in ("Procedure", "AdverseEvent", "Appointment", "Observation"):
            event(f"{kind}: {bool(resources(plain, kind))}")
        assert MARK not in json.dumps(plain)
        assert BORN not in json.dumps(plain)
        full = app.export_fhir(include_personal=True)
        check_bundle(full, schema=False)
        text = json.dumps(full)
        for ref in ("P-C1", "P-C2"):
            erased = app.get_course("C1" if ref == "P-C1" else "C2")["patient"] == "[erased]"
            assert (f"{MARK}-{ref}-name" in text) is not erased
            event(f"erased: {erased}")
            if erased:
                assert f"{MARK}-{ref}" not in text
        assert f"{MARK}-staff-dr-ada" in text  # practitioners' names: only with the flag
    finally:
        app.close()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=histories(), data=st.data())
def test_known_at_equals_a_store_sent_only_the_commands_until_then(
        history: list[tuple[int, dict[str, Any]]], data: st.DataObject) -> None:
    cut = data.draw(st.integers(1, len(history)), label="cut")
    whole, times = run(history)
    moment = times[cut - 1]
    while cut < len(times) and times[cut] == moment:  # one clock reading: known together
        cut += 1
    part, _ = run(history[:cut])
    try:
        travelled = whole.export_fhir(known_at=moment)
        alone = part.export_fhir()
        assert travelled.get("entry", []) == alone.get("entry", [])
    finally:
        whole.close()
        part.close()
