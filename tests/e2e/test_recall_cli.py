"""`coursebook recall LOT` on the command line, on a SQLite file and a PostgreSQL database:
the JSON document, the table, and the CSV file for a field safety notice's paperwork
(formula-safe: no cell a spreadsheet would run)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from tests.e2e.test_compliance_cli import cmd, coursebook

PRODUCT = {"name": "=HYPERLINK(\"http://x\")", "lot": "-HA-9", "expires_on": "2030-12-31"}
OTHER = {"name": "Polynucleotides", "lot": "PN-1", "expires_on": "2030-12-31"}


def give(course_id: str, at: str, products: list[dict[str, str]]) -> dict[str, object]:
    return cmd("give_session", at, "nurse-lind", course_id=course_id, products=products,
               areas=["face"], dose_ml=1.0, anaesthetic=None)


HISTORY = [
    cmd("register_practitioner", "2026-02-20T09:00:00+01:00", "admin",
        practitioner_id="nurse-lind", name="Tove Lind", role="nurse",
        license_number="L-2", license_expires_on="2030-04-20"),
    *(step for course_id, patient_ref, name in (("C-1", "P-1", "Jeanne Martin"),
                                                ("C-2", "P-2", "Kenji Watanabe"))
      for step in (
          cmd("open_course", "2026-03-01T09:00:00+01:00", "desk", course_id=course_id,
              patient_ref=patient_ref, indication="skin_rejuvenation",
              patient={"name": name, "birth_date": "1975-09-30"}),
          cmd("record_consultation", "2026-03-01T09:30:00+01:00", "nurse-lind",
              course_id=course_id, consent=True,
              screening={"pregnant": False, "breastfeeding": False,
                         "active_infection_at_site": False, "bleeding_disorder": False,
                         "anticoagulants": False, "autoimmune_disease": False,
                         "diabetes": False, "heart_condition": False, "allergies": [],
                         "medications": []}))),
    give("C-2", "2026-03-02T09:00:00Z", [OTHER, PRODUCT]),
    give("C-1", "2026-03-02T10:00:00+01:00", [PRODUCT]),
    cmd("erase_patient", "2026-03-20T09:00:00+01:00", "dpo", patient_ref="P-2",
        reason="erasure request"),
]


@pytest.fixture(scope="module")
def store(module_target: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("recall")
    assert coursebook(module_target, "init", "--timezone", "Europe/Paris").returncode == 0
    commands = directory / "history.jsonl"
    commands.write_text("\n".join(json.dumps(c) for c in HISTORY) + "\n", encoding="utf-8")
    result = coursebook(module_target, "import", str(commands))
    assert json.loads(result.stdout)["rejected"] == [], result.stdout
    return module_target


def test_prints_every_session_with_the_lot_by_time_then_course(store: str) -> None:
    result = coursebook(store, "recall", " -HA-9 ")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["lot"], document["courses"], document["patients"]) == ("-HA-9", 2, 2)
    assert [(s["course_id"], s["session_no"], s["patient_ref"], s["patient_erased"],
             s["course_status"], s["product"]["lot"]) for s in document["sessions"]] == [
        ("C-1", 1, "P-1", False, "active", "-HA-9"),
        ("C-2", 1, "P-2", True, "active", "-HA-9")]  # the same instant: by course
    assert "watanabe" not in result.stdout.casefold()


def test_as_of_and_known_at_select_the_events(store: str) -> None:
    # A lot that starts with "-" follows "--", as any argument that looks like an option.
    before = json.loads(coursebook(store, "recall", "--as-of",
                                   "2026-03-10T00:00:00+01:00", "--", "-HA-9").stdout)
    assert [s["patient_erased"] for s in before["sessions"]] == [False, False]
    known = json.loads(coursebook(store, "recall", "--known-at",
                                  "2020-01-01T00:00:00Z", "--", "-HA-9").stdout)
    assert (known["sessions"], known["courses"], known["patients"]) == ([], 0, 0)
    assert coursebook(store, "recall", "--as-of", "the tenth", "PN-1").returncode == 2


def test_an_unknown_lot_is_an_empty_list_and_an_empty_one_a_usage_error(store: str) -> None:
    result = coursebook(store, "recall", "NO-SUCH-LOT")
    assert result.returncode == 0
    assert json.loads(result.stdout)["sessions"] == []
    refused = coursebook(store, "recall", "  ")
    assert refused.returncode not in (0, 70)
    assert "lot" in refused.stdout + refused.stderr


def test_the_table_names_patients_by_pseudonym_and_marks_erasures(store: str) -> None:
    result = coursebook(store, "recall", "--", "-HA-9", json_output=False)
    assert result.returncode == 0, result.stderr
    # Not a terminal: complete tab-separated rows (docs/cli.md, "Tables").
    assert re.search(r"\tP-2\tyes\t", result.stdout)
    assert re.search(r"\tP-1\t\t", result.stdout)
    assert "2 sessions, 2 courses, 2 patients" in result.stdout
    for text in ("Jeanne", "Kenji", "Watanabe", "1975-09-30"):
        assert text not in result.stdout


def test_the_csv_file_is_formula_safe(store: str, tmp_path: Path) -> None:
    path = tmp_path / "recall.csv"
    result = coursebook(store, "recall", "--csv", str(path), "--", "-HA-9")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [(r["course_id"], r["patient_ref"], r["patient_erased"]) for r in rows] == [
        ("C-1", "P-1", "false"), ("C-2", "P-2", "true")]
    assert {r["product_lot"] for r in rows} == {"'-HA-9"}
    assert {r["product_name"] for r in rows} == {"'=HYPERLINK(\"http://x\")"}
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())
    assert "Watanabe" not in path.read_text(encoding="utf-8")
