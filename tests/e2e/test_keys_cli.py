"""`coursebook keys status|rotate`, and a key file others may read (exit 4), through the
command line."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_cli import COURSE, jsonl

CLI = [sys.executable, "-m", "coursebook.adapters.entrypoints.cli"]


def coursebook(*args: str, db: Path, env: dict[str, str] | None = None,
               ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("COURSEBOOK_DB", "COURSEBOOK_MASTER_KEY")}
    return subprocess.run([*CLI, "--db", str(db), *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=60, check=False)


def make_store(tmp_path: Path) -> Path:
    path = tmp_path / "clinic.db"
    assert coursebook("init", "--timezone", "Europe/Paris", db=path).returncode == 0
    source = tmp_path / "course.jsonl"
    source.write_bytes(jsonl(*COURSE))
    assert coursebook("import", str(source), db=path).returncode == 0
    return path


def test_a_key_file_others_may_read_exits_4_saying_why(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    key = Path(f"{store}.key")
    key.chmod(0o644)
    result = coursebook("course", "show", "C1", db=store)
    assert result.returncode == 4
    assert "permissions 0644" in result.stderr
    assert "too open" in result.stderr
    assert "chmod 600" in result.stderr
    key.chmod(0o600)
    assert coursebook("course", "show", "C1", db=store).returncode == 0


def test_keys_status_lists_a_pending_erasure_until_it_completes(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    erase = tmp_path / "erase.jsonl"
    erase.write_bytes(jsonl({"command": "erase_patient", "command_id": "erase-1",
                             "at": "2024-03-06T10:00:00+01:00", "actor": "dpo",
                             "patient_ref": "P1",
                             "reason": "request"}))
    reader = sqlite3.connect(store, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM stored_events").fetchone()
        assert coursebook("import", str(erase), db=store).returncode == 0
        status = coursebook("--format", "json", "keys", "status", "--complete", db=store)
        assert status.returncode == 0, status.stderr
        pending = json.loads(status.stdout)["pending_erasures"]
        assert [(p["kind"], p["patient_ref"]) for p in pending] == \
            [("erasure", "P1")]
        verify = coursebook("--format", "json", "verify", db=store)
        assert verify.returncode == 0
        assert len(json.loads(verify.stdout)["pending_erasures"]) == 1
        assert "pending erasure" in coursebook("verify", db=store).stdout
    finally:
        reader.close()
    status = coursebook("--format", "json", "keys", "status", "--complete", db=store)
    assert json.loads(status.stdout) == {"keys": 0, "pending_erasures": []}
    assert "no pending erasure" in coursebook("keys", "status", db=store).stdout


def test_keys_rotate_replaces_the_key_file_and_the_old_key_no_longer_opens(
        tmp_path: Path) -> None:
    store = make_store(tmp_path)
    key = Path(f"{store}.key")
    old = key.read_text()
    before = coursebook("--format", "json", "course", "show", "C1", db=store).stdout
    result = coursebook("--format", "json", "keys", "rotate", db=store)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"keys": 1, "key_file": str(key), "pending": []}
    assert key.read_text() != old
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if ".key" in p.name) == ["clinic.db.key"]
    assert coursebook("--format", "json", "course", "show", "C1", db=store).stdout == before
    assert coursebook("verify", db=store).returncode == 0
    assert coursebook("verify", db=store, env={"COURSEBOOK_MASTER_KEY": old}).returncode == 4


def test_keys_rotate_with_the_key_in_the_environment_needs_the_new_key(
        tmp_path: Path) -> None:
    from coursebook.adapters.storage.keys import new_master_key_text

    old, new = new_master_key_text(), new_master_key_text()
    path = tmp_path / "env.db"
    env = {"COURSEBOOK_MASTER_KEY": old}
    assert coursebook("init", db=path, env=env).returncode == 0
    refused = coursebook("keys", "rotate", db=path, env=env)
    assert refused.returncode == 2
    assert "COURSEBOOK_NEW_MASTER_KEY" in refused.stderr
    new_file = tmp_path / "new.key"
    new_file.write_text(new)
    new_file.chmod(0o644)
    assert coursebook("keys", "rotate", "--new-key-file", str(new_file), db=path,
                      env=env).returncode == 4  # a new key file others may read: refused
    new_file.chmod(0o600)
    done = coursebook("--format", "json", "keys", "rotate", "--new-key-file", str(new_file),
                      db=path, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["key_file"] is None
    assert not Path(f"{path}.key").exists()
    assert coursebook("verify", db=path, env=env).returncode == 4
    assert coursebook("verify", db=path, env={"COURSEBOOK_MASTER_KEY": new}).returncode == 0
