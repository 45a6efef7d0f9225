"""The bundle checks of `tests.fhir_checks` do catch what they are for (they pass the
golden bundle; each mutation of it below must fail them)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.fhir_checks import check_bundle, resources, schema_errors

GOLDEN = Path(__file__).parent.parent / "fixtures" / "fhir" / "reactions_and_reviews.bundle.json"


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return document


def test_the_golden_bundle_passes(golden: dict[str, Any]) -> None:
    check_bundle(golden)


def test_a_reference_outside_the_bundle_fails(golden: dict[str, Any]) -> None:
    broken = copy.deepcopy(golden)
    [procedure, *_] = resources(broken, "Procedure")
    procedure["subject"]["reference"] = "urn:uuid:00000000-0000-0000-0000-000000000000"
    with pytest.raises(AssertionError, match="references outside the bundle"):
        check_bundle(broken, schema=False)


def test_the_r4_schema_refuses_a_wrong_element(golden: dict[str, Any]) -> None:
    [adverse, *_] = resources(copy.deepcopy(golden), "AdverseEvent")
    assert schema_errors(adverse) == []
    adverse["actuality"] = "maybe"
    adverse["unknownElement"] = True
    errors = schema_errors(adverse)
    assert any("actuality" in e for e in errors)
    assert any("unknownElement" in e for e in errors)


def test_a_value_the_models_refuse_fails(golden: dict[str, Any]) -> None:
    broken = copy.deepcopy(golden)
    [procedure, *_] = resources(broken, "Procedure")
    procedure["performedDateTime"] = "the day before yesterday"
    with pytest.raises(ValueError, match="performedDateTime"):
        check_bundle(broken, schema=False)
