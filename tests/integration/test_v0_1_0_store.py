"""A store written by v0.1.0 still reads the same (issue "Stores that live for years").

`tests/fixtures/v0_1_0/` holds a store that coursebook v0.1.0 wrote (`store.db`, with the
head of its seal chain in `seal.json`) and what v0.1.0's command line printed on it
(`manifest.json` and `expected/`; its README says how both were made). Each manifest
entry is run again with the current command line, in a copy of that directory, as

    python -m coursebook --db store.db --format json ARGS...

and its standard output, parsed and written again as canonical JSON (sorted keys, 2-space
indent), must equal the recorded file byte for byte, and its exit code the recorded one.
Then new commands are imported into a copy of the old store: the chain still verifies,
also against the head sealed by v0.1.0; the views kept up to date since equal the views
rebuilt from zero; the long course still reads as v0.1.0 showed it.

Both run on two copies: the SQLite file itself, and a PostgreSQL schema holding the same
records (`tests/v0_1_0.py` says why that is the store v0.1.0 would have written there:
same bytes, same notification ids; its seal chain and views come along unchanged). The
PostgreSQL copy must give the same answers, under the same `ALLOWED_DIFFERENCES`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests import pg
from tests.stores import params
from tests.v0_1_0 import FIXTURE, copy_fixture_to_postgres

MANIFEST = json.loads((FIXTURE / "manifest.json").read_text(encoding="utf-8"))
ENTRIES: list[dict[str, Any]] = MANIFEST["entries"]

MASTER_KEY = "Y291cnNlYm9vay12MC4xLjAtZml4dHVyZS1URVNUISE="
"""The fixture's master key: TEST ONLY (public, in the fixture's scripts and README)."""

KINDS = params(["sqlite", "postgres"])
"""Where the old store is opened: the fixture's file, or its records copied to PostgreSQL."""

_NEW_KEY = ("docs/catalogues.md: a new key, absent from version 0.1.0's documents; "
            "under default@1 (every course of a store from before catalogues) it is null")
ALLOWED_DIFFERENCES: dict[tuple[str, str], str] = {
    ("expected/course/*/show*.json", "$.follow_up"):
        "course show gains follow_up (the catalogue parameter follow_up). " + _NEW_KEY,
    ("expected/course/*/show*.json", "$.next.screening_valid_until"):
        "the next-session window gains screening_valid_until (the catalogue parameter "
        "screening_valid_days). " + _NEW_KEY,
    ("expected/course/*/history*.json", "$[*].next_before.screening_valid_until"):
        "history shows the next-session window, which gains screening_valid_until. "
        + _NEW_KEY,
    ("expected/course/*/history*.json", "$[*].next_after.screening_valid_until"):
        "history shows the next-session window, which gains screening_valid_until. "
        + _NEW_KEY,
    ("expected/calendar*.json", "$[*].screening_valid_until"):
        "a calendar entry is the next-session window, which gains screening_valid_until. "
        + _NEW_KEY,
    ("expected/calendar*.json", "$[*].follow_up"):
        "a calendar entry shows the course's follow-up beside its next session. "
        + _NEW_KEY,
    ("expected/audit*.json", "$[*].detail.catalogue"):
        "an opening's audit detail names the catalogue the course was opened under "
        "(default@1 for every course opened before catalogues; docs/schema-evolution.md)",
    ("expected/audit*.json", "$[*].detail.safety"):
        "an opening's audit detail holds its catalogue's safety parameters (none under "
        "default@1: an empty object)",
    ("expected/audit*.json", "$[*].detail.from_medications"):
        "a consultation's audit detail holds the codes its medication list put in force "
        "(none before catalogues: an empty list)",
    ("expected/audit*.json", "$[*].detail.aftercare"):
        "a session's audit detail holds its aftercare (null before aftercare existed)",
    ("expected/verify*", "$.events"): "decisions.md: verify's events counts the facts "
                                      "(the audit trail's length), other_records the rest",
    ("expected/verify*", "$.other_records"): "decisions.md: the same decision",
}
"""Where the current code may answer otherwise than v0.1.0 did on its own store:
`(manifest file pattern, JSON path pattern)` -> the reason. In both patterns only `*` is
special (any run of characters); paths look like `$.next.planned_at` or
`$.findings[3].detail`, and an allowed path covers everything below it. Each entry needs
its reason: a new key or a recorded decision (docs/catalogues.md, docs/decisions.md),
never "the test failed"; every other answer v0.1.0 gave is still given, byte for byte."""

pytestmark = pytest.mark.slow


def canonical(document: Any) -> str:
    """The one text a JSON document is compared as (as `record_expected.py` stored it)."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSEBOOK_")}
    env["COURSEBOOK_MASTER_KEY"] = MASTER_KEY
    return env


def copy_fixture(destination: Path) -> Path:
    """The SQLite store and its seal, alone in a fresh directory (the fixture itself is
    never opened)."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in (MANIFEST["store"], MANIFEST["seal"]):
        shutil.copy2(FIXTURE / name, destination / name)
    return destination


@contextmanager
def old_store(kind: str, directory: Path) -> Iterator[str]:
    """A copy of the old store of `kind` (its target) with the seal in `directory`, the
    fixture itself never opened; a PostgreSQL copy is dropped afterwards."""
    if kind == "sqlite":
        yield str(copy_fixture(directory) / MANIFEST["store"])
        return
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(FIXTURE / MANIFEST["seal"], directory / MANIFEST["seal"])
    target = pg.new_target()
    try:
        copy_fixture_to_postgres(target, MASTER_KEY, store=FIXTURE / MANIFEST["store"])
        yield target
    finally:
        pg.drop_schema(target)


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


def coursebook(directory: Path, store: str, *calls: list[str]
               ) -> list[subprocess.CompletedProcess[bytes]]:
    """`coursebook --db STORE --format json ARGS...` for each of `calls`, in order, in
    `directory` (where the seal is), all in one interpreter (`DRIVER`)."""
    argv = [["--db", store, "--format", "json", *args] for args in calls]
    driver = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(argv).encode(),
                            env=cli_env(), cwd=directory, capture_output=True, timeout=600,
                            check=False)
    assert driver.returncode == 0, driver.stderr.decode(errors="replace")[-2000:]
    return [subprocess.CompletedProcess(args, code, stdout.encode(), stderr.encode())
            for args, (code, stdout, stderr) in zip(calls, json.loads(driver.stdout),
                                                     strict=True)]


@pytest.fixture(scope="module", params=KINDS)
def answers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, subprocess.CompletedProcess[bytes]]:
    """Every manifest entry run once, in order, on one copy of the store of the kind
    (the first one does whatever opening an old store does; the others only read)."""
    directory = tmp_path_factory.mktemp(f"v0_1_0_{request.param}") / "store"
    with old_store(request.param, directory) as store:
        results = coursebook(directory, store, *(entry["args"] for entry in ENTRIES))
    return {entry["file"]: result for entry, result in zip(ENTRIES, results, strict=True)}


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


def answer(result: subprocess.CompletedProcess[bytes]) -> Any:
    """The JSON document a successful command printed."""
    assert result.returncode == 0, (f"coursebook {' '.join(result.args)}: exit "
                                    f"{result.returncode}; "
                                    f"{result.stderr.decode(errors='replace')[-600:]}")
    return json.loads(result.stdout)


@pytest.mark.parametrize("kind", KINDS)
def test_new_commands_extend_the_old_chain(kind: str, tmp_path: Path) -> None:
    commands = tmp_path / "after.jsonl"
    commands.write_text("".join(json.dumps(c) + "\n" for c in NEW_COMMANDS), encoding="utf-8")
    long_course = next(e for e in ENTRIES if e["args"] == ["course", "show", "fx-long-hair"])
    live_views = (["audit"], ["calendar"])
    calls = [["import", str(commands)],
             ["verify"], ["verify", "--against", MANIFEST["seal"]],
             ["course", "show", "fx-after-01"], long_course["args"],
             *live_views, ["projections", "rebuild"], *live_views]
    directory = tmp_path / "store"
    with old_store(kind, directory) as store:
        (imported, verified, verified_against, shown, long_shown, audit, calendar, rebuilt,
         audit_rebuilt, calendar_rebuilt) = coursebook(directory, store, *calls)

    report = answer(imported)
    assert (report["applied"], report["rejected"]) == (len(NEW_COMMANDS), [])

    sealed_events = json.loads((FIXTURE / MANIFEST["seal"]).read_text())["events"]
    for result in (verified, verified_against):
        document = answer(result)
        assert (document["ok"], document["problems"]) == (True, []), document
        # The seal file counts every record; verify's events only the facts (decisions.md).
        assert document["events"] + document["other_records"] >= \
            sealed_events + len(NEW_COMMANDS)

    assert answer(shown)["sessions_given"] == 1
    # v0.1.0's snapshot of the long course (version 100, in its own snapshot format) is
    # read as meant or ignored, never misread: the course reads as v0.1.0 showed it.
    expected_long = json.loads((FIXTURE / long_course["file"]).read_text(encoding="utf-8"))
    assert [p for p in differences(expected_long, answer(long_shown))
            if not allowed(long_course["file"], p)] == []

    # The views kept up to date across the old events and the new ones (v0.1.0's rows
    # where their format is unchanged) equal the views rebuilt from zero.
    assert [view["name"] for view in answer(rebuilt)["rebuilt"]] == ["calendar", "audit",
                                                                "recall", "compliance"]
    old_audit = json.loads((FIXTURE / "expected" / "audit.json").read_text(encoding="utf-8"))
    assert [p for p in differences(old_audit, answer(audit)[:len(old_audit)])
            if not allowed("expected/audit.json", p)] == []
    assert len(answer(audit)) > len(old_audit)
    assert canonical(answer(audit_rebuilt)) == canonical(answer(audit))
    assert any(entry["course_id"] == "fx-after-01" for entry in answer(calendar))
    assert canonical(answer(calendar_rebuilt)) == canonical(answer(calendar))


# -- the old store, migrated -------------------------------------------------------------------
def test_migrate_reads_the_old_store_whole_and_changes_no_answer(tmp_path: Path) -> None:
    """`migrate --check` reads all 497 records (the course events through `upcast_v1_v2`),
    `migrate` rebuilds the audit view (format 1 -> 2) and replaces v0.1.0's snapshot;
    afterwards every recorded answer is still given, the whole audit trail with the
    migration's own entry after v0.1.0's."""
    directory = tmp_path / "store"
    entries = [e for e in ENTRIES if e["args"][0] != "verify"]
    with old_store("sqlite", directory) as store:
        checked, migrated, rechecked = coursebook(
            directory, store, ["migrate", "--check"],
            ["migrate", "--actor", "fx-admin", "--reason", "coursebook after 0.1.0"],
            ["migrate", "--check"])
        results = coursebook(directory, store, *(entry["args"] for entry in entries))
        verified = coursebook(directory, store, ["verify"],
                              ["verify", "--against", MANIFEST["seal"]])

    report = json.loads(checked.stdout)
    assert (checked.returncode, report["ok"], report["problems"]) == (0, True, []), \
        checked.stderr.decode(errors="replace")
    assert (report["records"], report["courses"], report["courses_folded"]) == (497, 14, 14)
    # Version 3 of these three came with catalogues (domain/schema.py): the course's
    # catalogue, the codes from the medication list, the session's aftercare.
    at_3 = {"TreatmentCourse.Opened", "TreatmentCourse.ConsultationRecorded",
            "TreatmentCourse.SessionGiven"}
    for event in report["events"]:
        course = event["type"].startswith("TreatmentCourse.")
        expected = ((1, 3, 0, ["upcast_v1_v2", "upcast_v2_v3"]) if event["type"] in at_3
                    else (1, 2, 0, ["upcast_v1_v2"]) if course else (1, 1, 0, []))
        assert (event["stored_version"], event["current_version"], event["failed"],
                event["upcasters"]) == expected, event
    assert report["snapshots"] == {"usable": 0, "ignored": 1, "other_form": 1, "newer": 0,
                                   "not_intact": 0}
    assert [(v["name"], v["stored_format"], v["format"], v["rebuild_needed"])
            for v in report["views"]] == [("calendar", 1, 2, True), ("audit", 1, 3, True),
                                   ("recall", None, 1, False),  # new since 0.1.0: made on use
                                   ("compliance", None, 1, False)]

    done = json.loads(migrated.stdout)
    assert (migrated.returncode, done["migrated"], done["snapshots_replaced"]) == (0, True, 1)
    assert [(v["name"], v["from_format"], v["to_format"]) for v in done["views_rebuilt"]] \
        == [("calendar", 1, 2), ("audit", 1, 3)]
    again = json.loads(rechecked.stdout)
    assert again["snapshots"]["usable"] == 1
    assert not any(v["rebuild_needed"] for v in again["views"])

    for entry, result in zip(entries, results, strict=True):
        actual = json.loads(result.stdout)
        if entry["file"] == "expected/audit.json":
            migration = actual.pop()
            assert (migration["event"], migration["subject"], migration["actor"]) == (
                "StoreMigrated", "clinic", "fx-admin")
        expected = json.loads((FIXTURE / entry["file"]).read_text(encoding="utf-8"))
        assert [p for p in differences(expected, actual)
                if not allowed(entry["file"], p)] == [], \
            f"coursebook {' '.join(entry['args'])}: differs after migrate"
        assert result.returncode == entry["exit"]
    for result in verified:
        document = json.loads(result.stdout)
        assert (document["ok"], document["problems"]) == (True, []), result.args
