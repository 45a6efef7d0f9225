"""`coursebook backup FILE`: a consistent copy of a SQLite store (with its key file), even
while another process writes; PostgreSQL stores are refused with a pointer to pg_dump."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from coursebook.adapters.storage.keys import new_master_key_text
from coursebook.bootstrap import open_store
from tests.e2e.test_cli import COURSE, jsonl
from tests.integration.ledger import read_ledger

CLI = [sys.executable, "-m", "coursebook.adapters.entrypoints.cli"]


def coursebook(*args: str, db: Path | str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COURSEBOOK_DB"}
    return subprocess.run([*CLI, "--db", str(db), *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "clinic.db"
    assert coursebook("init", "--timezone", "Europe/Paris", db=path).returncode == 0
    source = tmp_path / "course.jsonl"
    source.write_bytes(jsonl(*COURSE))
    assert coursebook("import", str(source), db=path).returncode == 0
    return path


def test_the_backup_and_its_key_file_answer_like_the_original(
        store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "backups" / "monday.db"
    copy.parent.mkdir()
    result = coursebook("--format", "json", "backup", str(copy), db=store)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backup"] == str(copy)
    assert report["bytes"] == copy.stat().st_size > 0
    key = Path(f"{copy}.key")  # init made the store's key file: it travels with it
    assert report["key_file"] == str(key)
    assert key.read_bytes() == Path(f"{store}.key").read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sorted(p.name for p in copy.parent.iterdir()) == ["monday.db", "monday.db.key"]
    shown = [coursebook("--format", "json", "course", "history", "C1", db=db).stdout
             for db in (store, copy)]
    assert shown[0] == shown[1]
    assert json.loads(shown[1])[-1]["event"] == "SessionGiven"


def test_with_the_master_key_in_the_environment_there_is_no_key_file_to_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSEBOOK_MASTER_KEY", new_master_key_text())
    store = tmp_path / "env-keyed.db"
    assert coursebook("init", db=store).returncode == 0
    assert not Path(f"{store}.key").exists()
    result = coursebook("--format", "json", "backup", str(tmp_path / "copy.db"), db=store)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["key_file"] is None
    assert coursebook("course", "history", "C1", db=tmp_path / "copy.db").returncode == 1


def test_an_existing_file_is_never_overwritten(store: Path, tmp_path: Path) -> None:
    existing = tmp_path / "precious.db"
    existing.write_bytes(b"do not touch")
    result = coursebook("backup", str(existing), db=store)
    assert result.returncode == 2
    assert "already exists" in result.stderr
    assert existing.read_bytes() == b"do not touch"


def test_without_a_store_it_exits_4(tmp_path: Path) -> None:
    result = coursebook("backup", str(tmp_path / "b.db"), db=tmp_path / "absent.db")
    assert result.returncode == 4
    assert not (tmp_path / "b.db").exists()


def test_an_unwritable_destination_exits_2_leaving_nothing(
        store: Path, tmp_path: Path) -> None:
    result = coursebook("backup", str(tmp_path / "no" / "such" / "dir.db"), db=store)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_a_postgresql_store_is_refused_with_a_pointer_to_pg_dump() -> None:
    # Nothing listens there: the refusal comes before any connection.
    result = coursebook("backup", "x.dump", db="postgresql://clinic:s3cret@127.0.0.1:1/cb")
    assert result.returncode == 2
    assert "pg_dump" in result.stderr
    assert "s3cret" not in result.stderr
    assert not Path("x.dump").exists()


@pytest.mark.slow
def test_a_backup_taken_while_another_process_imports_holds_whole_commands(
        tmp_path: Path) -> None:
    from tests.integration.test_crash import commands  # many commands on many courses

    store = tmp_path / "busy.db"
    assert coursebook("init", db=store).returncode == 0
    source = tmp_path / "many.jsonl"
    source.write_bytes(b"".join(json.dumps(c).encode() + b"\n" for c in commands()))
    env = {k: v for k, v in os.environ.items() if k != "COURSEBOOK_DB"}
    writer = subprocess.Popen([*CLI, "--db", str(store), "import", str(source)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        copies = []
        for n in range(3):
            copy = tmp_path / f"during-{n}.db"
            assert coursebook("backup", str(copy), db=store).returncode == 0
            copies.append(copy)
    finally:
        writer.wait(timeout=120)
    for copy in copies:
        app = open_store(str(copy))
        try:
            read_ledger(app).check()  # no lost or torn command: receipts match events
        finally:
            app.close()
