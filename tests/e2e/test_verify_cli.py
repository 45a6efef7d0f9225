"""`coursebook verify` and the store's key, through the installed command line."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coursebook.adapters.storage.keys import MASTER_KEY_ENV, new_master_key_text

CLI = [sys.executable, "-m", "coursebook.adapters.entrypoints.cli"]
REG = {"command": "register_practitioner", "command_id": "v-1", "actor": "admin",
       "at": "2024-01-02T09:00:00+01:00", "practitioner_id": "dr-ada", "name": "Ada",
       "role": "physician", "license_number": "L1", "license_expires_on": "2030-01-01"}
OPEN = {"command": "open_course", "command_id": "v-2", "actor": "admin",
        "at": "2024-03-04T09:00:00+01:00", "course_id": "C1", "patient_ref": "P1",
        "indication": "skin_rejuvenation",
        "patient": {"name": "Odile Verifiable", "birth_date": "1980-05-06"}}
PAUSE = {"command": "pause_course", "command_id": "v-3", "actor": "dr-ada",
         "at": "2024-03-05T09:00:00+01:00", "course_id": "C1", "reason": "travelling"}


def coursebook(store: Path, *args: str, stdin: bytes | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if k not in ("COURSEBOOK_DB", MASTER_KEY_ENV)}
    return subprocess.run([*CLI, "--db", str(store), "--format", "json", *args],
                          input=stdin, capture_output=True, env={**base, **(env or {})},
                          cwd=store.parent, timeout=60, check=False)


def doc(result: subprocess.CompletedProcess[bytes]) -> Any:
    return json.loads(result.stdout)


def lines(*commands: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(c).encode() + b"\n" for c in commands)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("built") / "store.db"
    assert coursebook(target, "init").returncode == 0
    assert coursebook(target, "import", "-", stdin=lines(REG, OPEN)).returncode == 0
    return target


@pytest.fixture
def store(built: Path, tmp_path: Path) -> Path:
    """A copy of the built store (its database files and key file) for one test."""
    for path in built.parent.glob("store.db*"):
        shutil.copy2(path, tmp_path / path.name)
    return tmp_path / "store.db"


def test_verify_seals_and_then_catches_removed_newest_events(store: Path) -> None:
    first = coursebook(store, "verify", "--seal", "head.json")
    assert first.returncode == 0, first.stderr
    assert doc(first)["ok"] is True
    assert doc(first)["problems"] == []
    assert (store.parent / "head.json").exists()
    assert coursebook(store, "import", "-", stdin=lines(PAUSE)).returncode == 0
    assert coursebook(store, "verify", "--seal", "head2.json").returncode == 0
    # Someone with write access removes the newest events and their seals.
    with sqlite3.connect(store) as conn:
        newest = conn.execute("SELECT max(rowid) FROM stored_events").fetchone()[0]
        sealed = json.loads((store.parent / "head.json").read_text())["position"]
        conn.execute("DELETE FROM stored_events WHERE rowid>?", (sealed,))
        conn.execute("DELETE FROM seal_chain WHERE position>?", (sealed,))
        conn.execute("UPDATE tracking SET notification_id=? WHERE application_name=?",
                     (sealed, "seal_chain"))
    conn.close()
    assert newest > sealed
    # The log alone cannot tell, but the views still hold the removed events: verify
    # names them (and only them), since it checks the views against the log.
    quiet = coursebook(store, "verify", "--against", "head.json")
    assert quiet.returncode == 3
    assert {p["subject"] for p in doc(quiet)["problems"]} == {
        "view audit", "view calendar", "view compliance"}
    caught = coursebook(store, "verify", "--against", "head2.json")
    assert caught.returncode == 3
    assert doc(caught)["ok"] is False
    assert doc(caught)["problems"][0]["position"] == newest


def test_verify_names_a_changed_event_and_exits_3(store: Path) -> None:
    with sqlite3.connect(store) as conn:
        rowid, state = conn.execute(
            "SELECT rowid, state FROM stored_events "
            "WHERE CAST(state AS TEXT) LIKE '%skin_rejuvenation%' "
            "AND topic LIKE '%TreatmentCourse%'").fetchone()
        conn.execute("UPDATE stored_events SET state=? WHERE rowid=?",
                     (state.replace(b"skin_rejuvenation", b"skin_rejuvenatioN"), rowid))
    conn.close()
    result = coursebook(store, "verify")
    assert result.returncode == 3
    first = doc(result)["problems"][0]
    assert first["position"] == rowid
    assert first["subject"] == "course C1"
    assert b"Odile" not in result.stdout + result.stderr


def test_a_bad_seal_file_is_a_usage_error(store: Path) -> None:
    (store.parent / "bad.json").write_text("[]")
    assert coursebook(store, "verify", "--against", "bad.json").returncode == 2
    assert coursebook(store, "verify", "--against", "missing.json").returncode == 2


def test_without_its_key_the_store_exits_4_with_a_clear_message(store: Path) -> None:
    key_file = Path(f"{store}.key")
    key_file.rename(store.parent / "elsewhere.key")
    for args in (["course", "show", "C1"], ["verify"], ["import", "-"], ["init"]):
        result = coursebook(store, *args, stdin=b"")
        assert result.returncode == 4, args
        assert b"key" in result.stderr
        assert b"Traceback" not in result.stderr
    wrong = coursebook(store, "course", "show", "C1",
                       env={MASTER_KEY_ENV: new_master_key_text()})
    assert wrong.returncode == 4
    assert b"does not open this store" in wrong.stderr
    # The key kept elsewhere opens it, through the environment variable.
    text = (store.parent / "elsewhere.key").read_text().strip()
    shown = coursebook(store, "course", "show", "C1", env={MASTER_KEY_ENV: text})
    assert shown.returncode == 0
    assert doc(shown)["patient"]["name"] == "Odile Verifiable"


def test_a_record_changed_beyond_decoding_is_named_by_verify_and_exits_3_elsewhere(
        store: Path) -> None:
    with sqlite3.connect(store) as conn:  # the store's settings, read by every command
        (state,) = conn.execute("SELECT state FROM stored_events WHERE rowid=1").fetchone()
        conn.execute("UPDATE stored_events SET state=? WHERE rowid=1", (b"}" + state[1:],))
    conn.close()
    checked = coursebook(store, "verify")
    assert checked.returncode == 3
    assert doc(checked)["problems"][0]["position"] == 1
    shown = coursebook(store, "course", "show", "C1")
    assert shown.returncode == 3  # a changed record: tampering, as verify says
    assert b"the store's settings" in shown.stderr
    assert b"run: coursebook verify" in shown.stderr
