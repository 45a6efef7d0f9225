"""A store written by v0.1.0 still reads the same (issue "Stores that live for years").

`tests/fixtures/v0_1_0/` holds a store that coursebook v0.1.0 wrote (`store.db`, with the
head of its seal chain in `seal.json`) and what v0.1.0's command line printed on it
(`manifest.json` and `expected/`; its README says how both were made). Each manifest
entry is run again with the current command line, in a copy of that directory, as

    python -m coursebook --db store.db --format json ARGS...

and its standard output, parsed and written again as canonical JSON (sorted keys, 2-space
indent), must equal the recorded file byte for byte, and its exit code the recorded one.
Then new commands are imported into a copy of the old store: the chain still verifies,
also against the head sealed by v0.1.0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "v0_1_0"
MANIFEST = json.loads((FIXTURE / "manifest.json").read_text(encoding="utf-8"))
ENTRIES: list[dict[str, Any]] = MANIFEST["entries"]

MASTER_KEY = "Y291cnNlYm9vay12MC4xLjAtZml4dHVyZS1URVNUISE="
"""The fixture's master key: TEST ONLY (public, in the fixture's scripts and README)."""

CLI = [sys.executable, "-m", "coursebook"]

ALLOWED_DIFFERENCES: dict[tuple[str, str], str] = {}
"""Where the current code may answer otherwise than v0.1.0 did on its own store:
`(manifest file pattern, JSON path pattern)` -> the reason, e.g.
`("expected/course/*/show*.json", "$.follow_up")`: "CONTRACT 8.2 adds follow_up to the
course document". In both patterns only `*` is special (any run of characters); paths look
like `$.next.planned_at` or `$.findings[3].detail`, and an allowed path covers everything
below it. Each entry needs
its reason: a change of the contract or a recorded decision (docs/decisions.md), never
"the test failed". Empty: every answer v0.1.0 gave is still given, byte for byte."""

pytestmark = pytest.mark.slow


def canonical(document: Any) -> str:
    """The one text a JSON document is compared as (as `record_expected.py` stored it)."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSEBOOK_")}
    env["COURSEBOOK_MASTER_KEY"] = MASTER_KEY
    return env


def coursebook(directory: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, "--db", str(directory / MANIFEST["store"]), "--format",
                           "json", *args], cwd=directory, env=cli_env(),
                          capture_output=True, timeout=120, check=False)


def copy_fixture(destination: Path) -> Path:
    """The store and its seal, alone in a fresh directory (the fixture is never opened)."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in (MANIFEST["store"], MANIFEST["seal"]):
        shutil.copy2(FIXTURE / name, destination / name)
    return destination


# -- comparing ---------------------------------------------------------------------------------
def differences(expected: Any, actual: Any, path: str = "$") -> Iterator[str]:
    """The paths where two JSON documents differ, in document order (a value of another
    type differs even when Python calls it equal: 1 and 1.0, 1 and true)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            where = f"{path}.{key}"
            if key not in expected or key not in actual:
                yield where
            else:
                yield from differences(expected[key], actual[key], where)
    elif isinstance(expected, list) and isinstance(actual, list):
        for i, (left, right) in enumerate(zip(expected, actual, strict=False)):
            yield from differences(left, right, f"{path}[{i}]")
        if len(expected) != len(actual):
            yield f"{path}[{min(len(expected), len(actual))}]"
    elif type(expected) is not type(actual) or expected != actual:
        yield path


def matches(pattern: str, text: str) -> bool:
    """A glob where only `*` is special (it matches any run of characters)."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), text) is not None


def allowed(file: str, path: str) -> bool:
    """Whether ALLOWED_DIFFERENCES lets `file` differ at `path` (or at a path above it)."""
    return any(matches(files, file) and any(
        matches(where, path[:end]) for end in range(1, len(path) + 1)
        if end == len(path) or path[end] in ".[")
        for files, where in ALLOWED_DIFFERENCES)


def resolve(document: Any, path: str) -> Any:
    """The value at a path of `differences` (`<absent>` when it is not there)."""
    value = document
    for step in path[1:].replace("[", ".[").split(".")[1:]:
        try:
            value = value[int(step[1:-1])] if step.startswith("[") else value[step]
        except (KeyError, IndexError, TypeError):
            return "<absent>"
    return value


def short(value: Any) -> str:
    text = value if value == "<absent>" else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 160 else text[:157] + "..."


# -- the old store, read by the current code -------------------------------------------------
DRIVER = """
import contextlib, io, json, sys
from coursebook.adapters.entrypoints.cli import cli
from coursebook.adapters.entrypoints.cli.common import run
out = []
for args in json.load(sys.stdin):
    sys.argv = ["coursebook", *args]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = run(cli)
    out.append([code, stdout.getvalue(), stderr.getvalue()])
json.dump(out, sys.__stdout__)
"""
"""Runs the command line in-process once per entry, all in one fresh interpreter: the
same `run(cli)` the console script calls, at a fraction of a process start each."""


def run_entries(directory: Path, entries: list[dict[str, Any]]
                ) -> dict[str, subprocess.CompletedProcess[bytes]]:
    """The manifest `entries` run in order on the store in `directory` (`DRIVER`)."""
    store = str(directory / MANIFEST["store"])
    calls = [["--db", store, "--format", "json", *entry["args"]] for entry in entries]
    driver = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(calls).encode(),
                            env=cli_env(), cwd=directory, capture_output=True, timeout=600,
                            check=False)
    assert driver.returncode == 0, driver.stderr.decode(errors="replace")[-2000:]
    results = json.loads(driver.stdout)
    return {entry["file"]: subprocess.CompletedProcess(
                entry["args"], code, stdout.encode(), stderr.encode())
            for entry, (code, stdout, stderr) in zip(entries, results, strict=True)}


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, subprocess.CompletedProcess[bytes]]:
    """Every manifest entry run once, in order, on one copy of the store (the first one
    does whatever opening an old store does; the others only read)."""
    return run_entries(copy_fixture(tmp_path_factory.mktemp("v0_1_0") / "store"), ENTRIES)


def test_the_manifest_names_every_expected_file_once() -> None:
    files = [entry["file"] for entry in ENTRIES]
    assert len(files) == len(set(files))
    on_disk = sorted(str(p.relative_to(FIXTURE)) for p in (FIXTURE / "expected").rglob("*.json"))
    assert sorted(files) == on_disk
    assert MANIFEST["master_key"] == MASTER_KEY


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"][len("expected/"):] for e in ENTRIES])
def test_the_current_command_line_answers_as_v0_1_0_did(
        entry: dict[str, Any], answers: dict[str, subprocess.CompletedProcess[bytes]]) -> None:
    command = "coursebook " + " ".join(entry["args"])
    result = answers[entry["file"]]
    stderr = result.stderr.decode("utf-8", errors="replace").strip()[-600:]
    expected_text = (FIXTURE / entry["file"]).read_text(encoding="utf-8")
    try:
        actual = json.loads(result.stdout.decode("utf-8"))
    except ValueError:
        pytest.fail(f"{command}: stdout is not one JSON document (exit {result.returncode}); "
                    f"stderr: {stderr}")
    if canonical(actual) != expected_text:
        expected = json.loads(expected_text)
        found = [p for p in differences(expected, actual) if not allowed(entry["file"], p)]
        if found:
            first = found[0]
            pytest.fail(f"{command}: differs from {entry['file']} at {first} (expected "
                        f"{short(resolve(expected, first))}, got {short(resolve(actual, first))}"
                        f"; {len(found)} differing path(s)); stderr: {stderr}")
    assert result.returncode == entry["exit"], (
        f"{command}: exit {result.returncode}, v0.1.0 exited {entry['exit']}; stderr: {stderr}")


# -- the old store, written to by the current code -------------------------------------------
SCREENING = {"pregnant": False, "breastfeeding": False, "active_infection_at_site": False,
             "bleeding_disorder": False, "anticoagulants": False,
             "autoimmune_disease": False, "diabetes": False, "heart_condition": False,
             "allergies": [], "medications": []}
NEW_COMMANDS = [
    {"command": "register_practitioner", "command_id": "after-v010-1",
     "at": "2026-10-31T09:00:00+01:00", "actor": "fx-admin",
     "practitioner_id": "fx-nurse-new", "name": "Nurse Rowan Ashby (fixture)",
     "role": "nurse", "license_number": "FX-NUR-0099", "license_expires_on": "2029-10-31"},
    {"command": "open_course", "command_id": "after-v010-2",
     "at": "2026-10-31T09:30:00+01:00", "actor": "fx-frontdesk", "course_id": "fx-after-01",
     "patient_ref": "fx-pt-99", "indication": "skin_rejuvenation"},
    {"command": "record_consultation", "command_id": "after-v010-3",
     "at": "2026-10-31T09:45:00+01:00", "actor": "fx-nurse-new", "course_id": "fx-after-01",
     "consent": True, "screening": SCREENING},
    {"command": "give_session", "command_id": "after-v010-4",
     "at": "2026-10-31T10:00:00+01:00", "actor": "fx-nurse-new", "course_id": "fx-after-01",
     "products": [{"name": "Non-cross-linked hyaluronic acid 18 mg/ml", "lot": "FX-HA-2609",
                   "expires_on": "2027-10-31"}],
     "areas": ["face"], "dose_ml": 1.5, "anaesthetic": None},
]


def test_new_commands_extend_the_old_chain(tmp_path: Path) -> None:
    directory = copy_fixture(tmp_path / "store")
    commands = tmp_path / "after.jsonl"
    commands.write_text("".join(json.dumps(c) + "\n" for c in NEW_COMMANDS), encoding="utf-8")

    imported = coursebook(directory, "import", str(commands))
    report = json.loads(imported.stdout)
    assert (imported.returncode, report["applied"], report["rejected"]) == (
        0, len(NEW_COMMANDS), []), imported.stderr.decode(errors="replace")

    sealed_events = json.loads((FIXTURE / MANIFEST["seal"]).read_text())["events"]
    for args in (["verify"], ["verify", "--against", MANIFEST["seal"]]):
        result = coursebook(directory, *args)
        document = json.loads(result.stdout)
        assert (result.returncode, document["ok"], document["problems"]) == (0, True, []), (
            f"coursebook {' '.join(args)}: {document}")
        assert document["events"] >= sealed_events + len(NEW_COMMANDS)

    shown = coursebook(directory, "course", "show", "fx-after-01")
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["sessions_given"] == 1


# -- the old store, migrated -------------------------------------------------------------------
def test_migrate_reads_the_old_store_whole_and_changes_no_answer(tmp_path: Path) -> None:
    """`migrate --check` reads all 497 records (the course events through `upcast_v1_v2`),
    `migrate` rebuilds the audit view (format 1 -> 2) and replaces v0.1.0's snapshot;
    afterwards every recorded answer is still given, the whole audit trail with the
    migration's own entry after v0.1.0's."""
    directory = copy_fixture(tmp_path / "store")

    checked = coursebook(directory, "migrate", "--check")
    report = json.loads(checked.stdout)
    assert (checked.returncode, report["ok"], report["problems"]) == (0, True, []), \
        checked.stderr.decode(errors="replace")
    assert (report["records"], report["courses"], report["courses_folded"]) == (497, 14, 14)
    for event in report["events"]:
        course = event["type"].startswith("TreatmentCourse.")
        assert (event["stored_version"], event["current_version"], event["failed"],
                event["upcasters"]) == ((1, 2, 0, ["upcast_v1_v2"]) if course
                                        else (1, 1, 0, [])), event
    assert report["snapshots"] == {"usable": 0, "ignored": 1, "other_form": 1, "newer": 0,
                                   "not_intact": 0}
    assert [(v["name"], v["stored_format"], v["format"], v["rebuild_needed"])
            for v in report["views"]] == [("calendar", 1, 1, False), ("audit", 1, 2, True)]

    migrated = coursebook(directory, "migrate", "--actor", "fx-admin", "--reason",
                          "coursebook after 0.1.0")
    done = json.loads(migrated.stdout)
    assert (migrated.returncode, done["migrated"], done["snapshots_replaced"]) == (0, True, 1)
    assert [(v["name"], v["from_format"], v["to_format"]) for v in done["views_rebuilt"]] \
        == [("audit", 1, 2)]
    again = json.loads(coursebook(directory, "migrate", "--check").stdout)
    assert again["snapshots"]["usable"] == 1
    assert not any(v["rebuild_needed"] for v in again["views"])

    whole_trail = "expected/audit.json"
    entries = [e for e in ENTRIES if e["args"][0] != "verify"]
    results = run_entries(directory, entries)
    for entry in entries:
        result = results[entry["file"]]
        actual = json.loads(result.stdout)
        if entry["file"] == whole_trail:
            migration = actual.pop()
            assert (migration["event"], migration["subject"], migration["actor"]) == (
                "StoreMigrated", "clinic", "fx-admin")
        assert canonical(actual) == (FIXTURE / entry["file"]).read_text(encoding="utf-8"), \
            f"coursebook {' '.join(entry['args'])}: differs after migrate"
        assert result.returncode == entry["exit"]
    for args in (["verify"], ["verify", "--against", MANIFEST["seal"]]):
        verified = json.loads(coursebook(directory, *args).stdout)
        assert (verified["ok"], verified["problems"]) == (True, []), args
