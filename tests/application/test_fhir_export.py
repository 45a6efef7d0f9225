"""`export_fhir`: every course as one FHIR R4 Bundle, on every store kind.

One story (a consultation with an absolute contraindication overridden, a booking moved
then cancelled, a session given under an anaesthetic, a serious reaction reviewed, a
pause, and a second patient erased) and the resources each of its facts must become.
Every bundle passes `tests.fhir_checks.check_bundle` (models, round trip, the R4 JSON
Schema, references inside the bundle).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from coursebook.clock import FixedClock
from coursebook.errors import Code
from coursebook.service.application import Coursebook
from tests.builders import PATIENT, Clinic, command, day, product, rejected, screening
from tests.fhir_checks import by_url, check_bundle, resources
from tests.stores import START

SECRETS = ("Jeanne Martin", "1984-03-12", "SECRET-SCREENING", "SECRET-ALLERGEN",
           "SECRET-REACTION", "SECRET-REVIEW", "Name of dr-ada")
ERASED_SECRETS = ("Paul Erased", "1979-01-02", "SECRET-P2")
GOLDEN_INPUT = Path(__file__).parent.parent / "fixtures" / "fhir" / "reactions_and_reviews.jsonl"
GOLDEN = GOLDEN_INPUT.with_name("reactions_and_reviews.bundle.json")


def story(clinic: Clinic) -> None:
    """The course C1 of patient P1 and the erased patient P2 (course C2)."""
    run = clinic.run
    clinic.open("C1")
    clinic.consult("C1", pregnant=True, anticoagulants=True, allergies=["SECRET-ALLERGEN"],
                   notes="SECRET-SCREENING note")
    run("override_contraindication", at=day(0, 11), course_id="C1", code="PREGNANCY",
        justification="Negative pregnancy test checked today")
    clinic.schedule("C1", planned_at=day(1, 10), practitioner_id="nurse-bo")
    run("reschedule_session", at=day(0, 12), course_id="C1", session_no=1,
        planned_at=day(1, 11), reason="room change")
    run("cancel_session", at=day(0, 13), course_id="C1", session_no=1, reason="patient ill")
    clinic.schedule("C1", at=day(0, 14), planned_at=day(2, 10))
    clinic.give("C1", at=day(2, 10), products=[product(lot="LOT-A")],
                anaesthetic="lidocaine cream")
    clinic.react("C1", at=day(3), severity=4, kind="allergic_reaction",
                 notes="SECRET-REACTION seen")
    clinic.review("C1", at=day(4), notes="SECRET-REVIEW done")
    clinic.pause("C1", at=day(5))
    clinic.resume("C1", at=day(6))
    clinic.open("C2", patient_ref="P2",
                patient={"name": "Paul Erased", "birth_date": "1979-01-02"})
    clinic.consult("C2", medications=["SECRET-P2 pill"])
    run("erase_patient", at=day(7), actor="admin", patient_ref="P2",
        reason="the patient asked")


@pytest.fixture
def told(clinic: Clinic) -> Clinic:
    story(clinic)
    return clinic


def one(document: dict[str, Any], resource_type: str, **where: Any) -> dict[str, Any]:
    found = [r for r in resources(document, resource_type)
             if all(r.get(k) == v for k, v in where.items())]
    assert len(found) == 1, (resource_type, where, len(found))
    return found[0]


def identified(document: dict[str, Any], resource_type: str, value: str) -> dict[str, Any]:
    found = [r for r in resources(document, resource_type)
             if any(i.get("value") == value for i in r.get("identifier", []))]
    assert len(found) == 1, (resource_type, value, len(found))
    return found[0]


def ext(resource: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in resource.get("extension", []) if e["url"].endswith(":" + name)]


def sub(extension: dict[str, Any], url: str) -> Any:
    [part] = [e for e in extension["extension"] if e["url"] == url]
    return next(v for k, v in part.items() if k.startswith("value"))


def utc(text: str) -> str:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC).isoformat().replace(
        "+00:00", "Z")


def test_the_bundle_of_a_story_validates_and_maps_each_fact(told: Clinic) -> None:
    document = told.app.export_fhir()
    check_bundle(document)
    urls = by_url(document)
    assert document["type"] == "collection"
    assert document["timestamp"] == "2026-11-01T12:00:00Z"  # the clock's now

    plan = identified(document, "CarePlan", "C1")
    patient = identified(document, "Patient", "P1")
    assert urls[plan["subject"]["reference"]] is patient
    assert plan["status"] == "active"
    assert plan["instantiatesCanonical"] == ["urn:coursebook:protocol:default/"
                                             "skin_rejuvenation|1"]
    course = told.course("C1")
    assert len(plan["activity"]) == course["planned_sessions"]
    first, second = plan["activity"][:2]
    assert first["detail"]["status"] == "completed"
    assert second["detail"]["status"] == "not-started"
    repeat = second["detail"]["scheduledTiming"]["repeat"]
    rule = course["spacing"]
    assert (repeat["period"], repeat["periodUnit"]) == (rule["min_days"], "d")
    assert repeat["periodMax"] == rule["max_days"]
    assert [n["text"] for n in plan["note"]] == ["paused: patient travelling", "resumed"]

    moved, given_booking = sorted(resources(document, "Appointment"),
                                  key=lambda a: a["created"])
    assert moved["status"] == "cancelled"
    assert moved["cancelationReason"]["text"] == "patient ill"
    assert moved["start"] == utc(day(1, 11))
    assert "moved: room change" in moved["comment"]
    nurse = identified(document, "Practitioner", "nurse-bo")
    assert {p["actor"].get("reference") for p in moved["participant"]} == {
        f"urn:uuid:{patient['id']}", f"urn:uuid:{nurse['id']}"}
    assert given_booking["status"] == "fulfilled"

    procedure = one(document, "Procedure")
    doctor = identified(document, "Practitioner", "dr-ada")
    assert procedure["performer"][0]["actor"]["reference"] == f"urn:uuid:{doctor['id']}"
    assert procedure["performedDateTime"] == utc(day(2, 10))
    assert procedure["basedOn"][0]["reference"] == f"urn:uuid:{plan['id']}"
    assert [b["text"] for b in procedure["bodySite"]] == ["face"]
    [medication] = [urls[r["reference"]] for r in procedure["usedReference"]]
    assert medication["resourceType"] == "Medication"
    assert medication["batch"] == {"lotNumber": "LOT-A", "expirationDate": "2027-12-31"}
    assert ext(procedure, "dose")[0]["valueQuantity"]["value"] == 2.0
    assert ext(procedure, "anaesthetic")[0]["valueString"] == "lidocaine cream"
    [override] = ext(procedure, "contraindication-override")
    assert sub(override, "code") == "PREGNANCY"
    assert sub(override, "by") == "dr-ada"
    assert sub(ext(procedure, "cautions")[0], "code") == "ANTICOAGULANTS"

    reaction = one(document, "AdverseEvent")
    assert reaction["suspectEntity"][0]["instance"]["reference"] == (
        f"urn:uuid:{procedure['id']}")
    assert reaction["seriousness"]["coding"][0]["code"] == "serious"
    assert reaction["severity"]["coding"][0]["code"] == "severe"
    assert ext(reaction, "severity-grade")[0]["valueInteger"] == 4
    [review] = ext(reaction, "review")
    assert sub(review, "decision") == "continue"
    assert sub(review, "by")["reference"] == f"urn:uuid:{doctor['id']}"

    pregnancy = one(document, "DetectedIssue", severity="high")
    assert pregnancy["code"]["coding"][0]["code"] == "PREGNANCY"
    [mitigation] = pregnancy["mitigation"]
    assert mitigation["author"]["reference"] == f"urn:uuid:{doctor['id']}"
    assert mitigation["date"] == utc(day(0, 11))
    assert "Negative pregnancy test" in mitigation["action"]["text"]
    caution = one(document, "DetectedIssue", severity="moderate")
    assert "mitigation" not in caution

    consent = [c for c in resources(document, "Consent")
               if c["patient"]["reference"] == f"urn:uuid:{patient['id']}"]
    assert [(c["status"], c["provision"]["type"]) for c in consent] == [("active", "permit")]

    assert doctor["qualification"] == [{
        "identifier": [{"system": "urn:coursebook:license", "value": "LIC-dr-ada"}],
        "code": {"coding": [{"system": "urn:coursebook:role", "code": "physician"}],
                 "text": "physician"},
        "period": {"start": utc("2026-01-05T09:00:00+01:00"), "end": "2030-12-31"}}]


def test_a_provenance_per_recorded_event_carries_both_times(told: Clinic) -> None:
    document = told.app.export_fhir()
    provenance = resources(document, "Provenance")
    facts = [n for n in told.notifications() if "TreatmentCourse." in n.topic
             or "PractitionerRecord." in n.topic or n.topic.endswith("PatientRecord.Erased")]
    assert len(provenance) == len(facts) == 18
    assert len({p["id"] for p in provenance}) == len(provenance)
    urls = by_url(document)
    override = one(document, "Provenance", occurredDateTime=utc(day(0, 11)))
    assert override["recorded"] == "2026-11-01T12:00:00Z"
    assert override["activity"]["coding"][0]["code"] == "ContraindicationOverridden"
    assert urls[override["target"][0]["reference"]]["resourceType"] == "DetectedIssue"
    assert urls[override["agent"][0]["who"]["reference"]]["identifier"][0]["value"] == (
        "dr-ada")
    plan = identified(document, "CarePlan", "C1")
    [opened] = [p for p in provenance if p["occurredDateTime"] == utc(day(0, 8))
                and p["target"][0]["reference"] == f"urn:uuid:{plan['id']}"]
    assert opened["agent"][0]["who"] == {  # not a practitioner: named, not referenced
        "identifier": {"system": "urn:coursebook:actor", "value": "admin"},
        "display": "admin"}
    erasure = [p for p in provenance if p["activity"]["coding"][0]["code"] == "PatientErased"]
    assert len(erasure) == 1


def test_no_personal_data_without_the_flag(told: Clinic) -> None:
    text = json.dumps(told.app.export_fhir(), ensure_ascii=False)
    for secret in (*SECRETS, *ERASED_SECRETS):
        assert secret not in text
    patient = identified(told.app.export_fhir(), "Patient", "P1")
    assert set(patient) == {"resourceType", "id", "identifier"}


def test_personal_data_with_the_flag_never_an_erased_patients(told: Clinic) -> None:
    document = told.app.export_fhir(include_personal=True)
    check_bundle(document)
    text = json.dumps(document, ensure_ascii=False)
    for secret in SECRETS:
        assert secret in text
    for secret in ERASED_SECRETS:
        assert secret not in text
    patient = identified(document, "Patient", "P1")
    assert patient["name"] == [{"text": PATIENT["name"]}]
    assert patient["birthDate"] == PATIENT["birth_date"]
    erased = identified(document, "Patient", "P2")
    assert set(erased) == {"resourceType", "id", "identifier"}
    [answers] = resources(document, "QuestionnaireResponse")  # P2's are gone with the key
    items = {item["linkId"]: item.get("answer") for item in answers["item"]}
    assert items["pregnant"] == [{"valueBoolean": True}]
    assert items["allergies"] == [{"valueString": "SECRET-ALLERGEN"}]


def test_one_course_and_the_practitioners_it_names(told: Clinic) -> None:
    document = told.app.export_fhir(["C2"])
    check_bundle(document)
    assert [p["identifier"][0]["value"] for p in resources(document, "CarePlan")] == ["C2"]
    assert {p["identifier"][0]["value"] for p in resources(document, "Practitioner")} == {
        "dr-ada"}  # the consultation's author
    with rejected(Code.NOT_FOUND, "course_id"):
        told.app.export_fhir(["C1", "nope"])


def test_time_travel_bad_timestamps_are_refused(told: Clinic) -> None:
    with rejected(Code.INVALID, "as_of"):
        told.app.export_fhir(as_of="yesterday")
    with rejected(Code.INVALID, "known_at"):
        told.app.export_fhir(known_at="2026-09-01T09:00:00")  # no offset


def test_as_of_leaves_out_what_came_later(told: Clinic) -> None:
    document = told.app.export_fhir(as_of=day(2, 12))
    check_bundle(document)
    assert not resources(document, "AdverseEvent")
    assert len(resources(document, "Procedure")) == 1
    plan = identified(document, "CarePlan", "C1")
    assert "note" not in plan
    with rejected(Code.NOT_FOUND, "course_id"):
        told.app.export_fhir(["C1"], as_of=day(-1))


# -- time travel equals a store that held only those events ------------------------------
def scripted() -> list[dict[str, Any]]:
    """The commands of a course in valid-time order, each recorded 20 minutes after its
    act (the clock is set so for each)."""
    return [
        command("register_practitioner", at="2026-01-05T09:00:00+01:00", actor="admin",
                practitioner_id="dr-ada", name="Ada", role="physician",
                license_number="L-1", license_expires_on="2030-12-31"),
        command("open_course", at=day(0, 8), actor="admin", course_id="C1",
                patient_ref="P1", indication="skin_rejuvenation"),
        command("record_consultation", at=day(0), course_id="C1", consent=True,
                screening=screening(pregnant=True)),
        command("override_contraindication", at=day(0, 11), course_id="C1",
                code="PREGNANCY", justification="Negative pregnancy test checked today"),
        command("schedule_session", at=day(0, 12), course_id="C1", planned_at=day(1, 10)),
        command("give_session", at=day(1, 10), course_id="C1", products=[product()],
                areas=["face"], dose_ml=2.0, anaesthetic=None),
        command("report_reaction", at=day(2), course_id="C1", session_no=1, kind="swelling",
                severity=3),
        command("review_reaction", at=day(3), course_id="C1", session_no=1,
                decision="continue"),
        command("schedule_session", at=day(3, 10), course_id="C1", planned_at=day(20, 10)),
        command("cancel_session", at=day(4), course_id="C1", session_no=2, reason="away"),
        command("discontinue_course", at=day(5), course_id="C1", reason="moved abroad"),
    ]


def recorded_at(raw: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(raw["at"]) + dt.timedelta(minutes=20)


def store_of(app: Coursebook, clock: FixedClock, commands: list[dict[str, Any]]) -> None:
    for raw in commands:
        clock.set(recorded_at(raw))
        app.execute(raw)


def entries(document: dict[str, Any]) -> list[Any]:
    return document.get("entry", [])


@pytest.mark.parametrize("cut", [2, 4, 6, 8, 10])
@pytest.mark.parametrize("axis", ["as_of", "known_at"])
def test_time_travel_equals_a_store_that_held_only_those_events(
        app: Coursebook, clock: FixedClock, cut: int, axis: str) -> None:
    commands = scripted()
    store_of(app, clock, commands)
    moment = (dt.datetime.fromisoformat(commands[cut - 1]["at"]) if axis == "as_of"
              else recorded_at(commands[cut - 1]))
    travelled = app.export_fhir(**{axis: moment})
    check_bundle(travelled, schema=cut == 10)
    fresh_clock = FixedClock(START)
    fresh = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=fresh_clock)
    fresh.initialise("Europe/Paris", "default@1")  # as the `app` fixture
    store_of(fresh, fresh_clock, commands[:cut])
    assert entries(travelled) == entries(fresh.export_fhir())
    fresh.close()


# -- the golden bundle -------------------------------------------------------------------
def golden_store() -> Coursebook:
    """The public scenario "reactions and reviews" (its import lines, refused ones
    included), each line recorded 15 minutes after its act."""
    clock = FixedClock(START)
    app = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    app.initialise("UTC", "default@1")  # the scenario's catalogue
    cap = dt.datetime(2026, 4, 20, 12, tzinfo=dt.UTC)
    for line in GOLDEN_INPUT.read_text(encoding="utf-8").splitlines():
        at = dt.datetime.fromisoformat(json.loads(line)["at"])
        clock.set(min(at + dt.timedelta(minutes=15), cap))
        app.import_lines([line])
    clock.set(cap)
    return app


def test_the_golden_bundle_of_a_public_scenario() -> None:
    """Regenerate after a deliberate change of the mapping with
    `COURSEBOOK_WRITE_GOLDEN=1 pytest tests/application/test_fhir_export.py -k golden`,
    and read the diff."""
    app = golden_store()
    document = app.export_fhir()
    app.close()
    check_bundle(document)
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if os.environ.get("COURSEBOOK_WRITE_GOLDEN") == "1":
        GOLDEN.write_bytes(text)
    assert text.decode() == GOLDEN.read_text(encoding="utf-8")
    assert "Firm nodules" not in text.decode()  # the reaction's notes: personal


@pytest.mark.slow
def test_the_demo_clinic_exports_a_valid_bundle_without_loss() -> None:
    from tests.application.test_demo_clinic import NOW, built

    run = built(NOW)
    for include_personal in (False, True):
        document = run.app.export_fhir(include_personal=include_personal)
        check_bundle(document, schema=not include_personal)
        plans = resources(document, "CarePlan")
        assert {p["identifier"][0]["value"] for p in plans} == set(run.course_ids)
    run.app.close()


def test_an_empty_store_exports_an_empty_bundle(app: Coursebook) -> None:
    document = app.export_fhir()
    check_bundle(document)
    assert "entry" not in document
