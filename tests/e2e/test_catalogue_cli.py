"""`coursebook init --catalogue`, `catalogue show` and `catalogue adopt` as installed
(docs/catalogues.md)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli import coursebook, one_json_document

OURS = """name = "ours"
version = 1

[protocols.pigmentation]
default_sessions = 4
phases = [{ first = 1, min_days = 21, target_days = 28, max_days = 35 }]

[safety]
aftercare_required = true
"""


def test_a_new_store_adopts_default_2_and_shows_it(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    created = coursebook("--format", "json", "init", db=db)
    assert created.returncode == 0
    assert one_json_document(created)["catalogue"]["version"] == 2
    shown = one_json_document(coursebook("--format", "json", "catalogue", "show", db=db))
    assert (shown["name"], shown["version"]) == ("default", 2)
    assert shown["safety"]["screening_valid_days"] == 180
    assert shown["adopted_at"].endswith("Z")


def test_a_clinic_file_is_adopted_and_a_bad_one_is_exit_2_naming_the_field(
        tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    assert coursebook("init", "--catalogue", "default@1", db=db).returncode == 0
    ours = tmp_path / "ours.toml"
    ours.write_text(OURS, encoding="utf-8")
    adopted = coursebook("--format", "json", "catalogue", "adopt", str(ours), "--actor",
                         "dr-ada", "--reason", "our pigmentation protocol", db=db)
    assert adopted.returncode == 0, adopted.stderr
    assert one_json_document(adopted)["name"] == "ours"
    bad = tmp_path / "bad.toml"
    bad.write_text(OURS.replace("min_days = 21", "min_days = 40"), encoding="utf-8")
    refused = coursebook("catalogue", "adopt", str(bad), "--actor", "dr-ada", "--reason",
                         "a broken protocol file", db=db)
    assert refused.returncode == 2
    assert b"protocols.pigmentation.phases[0].target_days" in refused.stderr
    changed = coursebook("catalogue", "adopt", str(bad).replace("bad", "ours"), "--actor",
                         "dr-ada", "--reason", "short", db=db)
    assert changed.returncode == 2
    assert b"reason" in changed.stderr
    assert coursebook("init", "--catalogue", "default@2", db=db).returncode == 2
    audit = one_json_document(coursebook("--format", "json", "audit", db=db))
    assert [(e["subject"], e["actor"]) for e in audit if e["event"] == "CatalogueAdopted"] \
        == [("catalogue", "coursebook init"), ("catalogue", "dr-ada")]
