"""`export_fhir` of the clinical-safety facts, under the catalogue `default@2`: the
catalogue a course was opened under, aftercare, serious reaction kinds, follow-ups and a
withdrawal of consent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coursebook.clock import FixedClock
from coursebook.service.application import Coursebook
from tests.builders import Clinic, day, product
from tests.fhir_checks import by_url, check_bundle, resources
from tests.stores import make_app, release


@pytest.fixture
def clinic(store_kind: str, tmp_path: Path, clock: FixedClock) -> Clinic:
    app = make_app(store_kind, tmp_path, clock, catalogue="default@2")
    yield Clinic(app)
    app.close()
    release(store_kind, tmp_path)


def story(clinic: Clinic) -> Coursebook:
    clinic.ready("C1")
    clinic.give("C1", at=day(1, 10), products=[product(lot="LOT-A")],
                aftercare="AC-FACE v3")
    clinic.react("C1", at=day(2), severity=2, kind="infection",
                 notes="SECRET-REACTION at the site")
    clinic.review("C1", at=day(2, 12))
    clinic.run("record_follow_up", at=day(3), course_id="C1", session_no=1,
               outcome="concern", notes="SECRET-FOLLOW-UP call")
    clinic.run("withdraw_consent", at=day(4), course_id="C1", reason="by letter")
    return clinic.app


def test_safety_facts_map_to_their_resources(clinic: Clinic) -> None:
    app = story(clinic)
    document = app.export_fhir()
    check_bundle(document)
    urls = by_url(document)
    [plan] = resources(document, "CarePlan")
    assert plan["instantiatesCanonical"] == ["urn:coursebook:protocol:default/"
                                             "skin_rejuvenation|2"]
    [protocol] = [e for e in plan["extension"] if e["url"].endswith(":protocol")]
    digest = [p["valueString"] for p in protocol["extension"] if p["url"] == "catalogue-digest"]
    assert digest == [app.catalogue()["digest"]]  # the one in force when it was opened

    [procedure] = resources(document, "Procedure")
    assert procedure["followUp"] == [{"text": "aftercare: AC-FACE v3"}]

    [reaction] = resources(document, "AdverseEvent")  # severity 2, but a serious kind
    assert reaction["seriousness"]["coding"][0]["code"] == "serious"
    assert reaction["severity"]["coding"][0]["code"] == "moderate"

    [follow_up] = resources(document, "Observation")
    assert follow_up["valueCodeableConcept"]["coding"][0]["code"] == "concern"
    assert urls[follow_up["partOf"][0]["reference"]] is procedure
    assert follow_up["effectiveDateTime"] == "2026-09-04T07:00:00Z"
    assert "note" not in follow_up

    given, withdrawn = resources(document, "Consent")
    assert given["status"] == "inactive"
    assert given["provision"] == {"type": "permit", "period": {
        "start": "2026-09-01T07:00:00Z", "end": "2026-09-05T07:00:00Z"}}
    assert withdrawn["status"] == "active"
    assert withdrawn["provision"] == {"type": "deny"}
    assert withdrawn["policyRule"]["text"] == "consent withdrawn: by letter"
    assert withdrawn["dateTime"] == "2026-09-05T07:00:00Z"
    activities = {p["activity"]["coding"][0]["code"] for p in resources(document, "Provenance")}
    assert {"FollowUpRecorded", "ConsentWithdrawn"} <= activities

    text = json.dumps(document)
    assert "SECRET" not in text
    full = app.export_fhir(include_personal=True)
    check_bundle(full, schema=False)
    [follow_up] = resources(full, "Observation")
    assert follow_up["note"][0]["text"] == "SECRET-FOLLOW-UP call"
