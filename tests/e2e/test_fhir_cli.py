"""`coursebook export fhir FILE` on the command line, on each persistent store kind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.test_compliance_cli import PERSONAL, build_store, coursebook
from tests.fhir_checks import check_bundle, resources


@pytest.fixture(scope="module")
def store(module_target: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_store(module_target, tmp_path_factory.mktemp("fhir"))


def test_writes_a_valid_bundle_without_personal_data(store: str, tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    result = coursebook(store, "export", "fhir", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    document = json.loads(out.read_text(encoding="utf-8"))
    check_bundle(document)
    assert summary == {"file": str(out), "courses": 2, "resources": len(document["entry"]),
                       "include_personal": False}
    assert "wrote a FHIR bundle of 2 course(s)" in result.stderr
    for text in PERSONAL:
        assert text.lower() not in out.read_text(encoding="utf-8").lower()
    assert out.stat().st_mode & 0o077 == 0  # owner-only: it may hold personal data


def test_include_personal_and_one_course(store: str, tmp_path: Path) -> None:
    out = tmp_path / "c1.json"
    result = coursebook(store, "export", "fhir", str(out), "--course", "C-1",
                        "--include-personal")
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    check_bundle(document, schema=False)
    [plan] = resources(document, "CarePlan")
    assert plan["identifier"][0]["value"] == "C-1"
    [patient] = resources(document, "Patient")
    assert patient["name"] == [{"text": "Jeanne Martin"}]
    assert patient["birthDate"] == "1984-03-12"


def test_time_travel_options(store: str, tmp_path: Path) -> None:
    out = tmp_path / "then.json"
    result = coursebook(store, "export", "fhir", str(out), "--as-of",
                        "2026-03-02T12:00:00+01:00", "--known-at", "2099-01-01T00:00:00Z")
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    assert len(resources(document, "Procedure")) == 1  # C-1's first session only


def test_never_over_a_file_or_through_a_link_unless_forced(store: str,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "kept.json"
    out.write_text("mine", encoding="utf-8")
    result = coursebook(store, "export", "fhir", str(out))
    assert result.returncode == 2
    assert "already exists" in result.stderr
    assert "--force" in result.stderr
    assert out.read_text(encoding="utf-8") == "mine"
    link = tmp_path / "link.json"
    os.symlink(out, link)
    result = coursebook(store, "export", "fhir", str(link), "--force")
    assert result.returncode == 2
    assert "symbolic link" in result.stderr
    assert out.read_text(encoding="utf-8") == "mine"
    assert coursebook(store, "export", "fhir", str(out), "--force").returncode == 0
    check_bundle(json.loads(out.read_text(encoding="utf-8")), schema=False)


def test_never_over_the_store_or_its_key(tmp_path: Path) -> None:
    """The shared export guard: the store, its key and its SQLite companions are refused
    even with --force, however the path is spelt (a hard link, a symlinked directory)."""
    db = tmp_path / "clinic.db"
    assert coursebook(db, "init", "--timezone", "Europe/Paris").returncode == 0
    key = tmp_path / "clinic.db.key"
    before = {path: path.read_bytes() for path in (db, key)}
    os.link(db, tmp_path / "hard.db")
    os.symlink(tmp_path, tmp_path / "via")
    for target in (db, key, tmp_path / "hard.db", tmp_path / "via" / "clinic.db.key",
                   tmp_path / "clinic.db-wal"):
        result = coursebook(db, "export", "fhir", str(target), "--force")
        assert result.returncode == 2, target
        assert "is the store or its key" in result.stderr
    assert {path: path.read_bytes() for path in (db, key)} == before
    assert not (tmp_path / "clinic.db-wal").exists()


def test_unknown_course_and_bad_timestamp(store: str, tmp_path: Path) -> None:
    out = tmp_path / "none.json"
    result = coursebook(store, "export", "fhir", str(out), "--course", "C-404")
    assert result.returncode == 1
    assert json.loads(result.stdout)["code"] == "NOT_FOUND"
    assert not out.exists()
    result = coursebook(store, "export", "fhir", str(out), "--as-of", "soon")
    assert result.returncode == 2
    assert "--as-of" in result.stderr
    assert not out.exists()
