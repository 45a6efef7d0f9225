"""A changed or damaged stored event, through the command line: every query exits 3 with
one line naming the record (never 0 with the forged value, never 4 or 70), as `verify`
does. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coursebook.adapters.storage.keys import MASTER_KEY_ENV
from tests.application.test_verified_reads import Raw
from tests.e2e.test_verify_cli import OPEN, REG, lines

CLI = [sys.executable, "-m", "coursebook.adapters.entrypoints.cli"]
GIVE = {"command": "pause_course", "command_id": "v-3", "actor": "dr-ada",
        "at": "2024-03-05T09:00:00+01:00", "course_id": "C1", "reason": "travelling"}


def coursebook(where: str, cwd: Path, *args: str,
               stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COURSEBOOK_DB", MASTER_KEY_ENV)}
    return subprocess.run([*CLI, "--db", where, *args], input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=60,
                          check=False)


def kind_of(where: str) -> str:
    return "postgres" if where.startswith("postgresql://") else "sqlite"


@pytest.mark.parametrize("query", [["course", "show", "C1"], ["course", "history", "C1"],
                                   ["compliance", "--as-of", "2024-03-06T00:00:00+01:00"],
                                   ["course", "show", "C1", "--as-of",
                                    "2024-03-06T00:00:00+01:00"]])
def test_a_changed_event_makes_every_query_exit_3_naming_it(new_target: str, tmp_path: Path,
                                                            query: list[str]) -> None:
    assert coursebook(new_target, tmp_path, "init").returncode == 0
    assert coursebook(new_target, tmp_path, "import", "-",
                      stdin=lines(REG, OPEN, GIVE)).returncode == 0
    assert coursebook(new_target, tmp_path, *query).returncode == 0
    raw = Raw(kind_of(new_target), new_target)
    position, state = raw.position_of(b"travelling")
    raw.set_state(position, state.replace(b"travelling", b"travellinG"))
    result = coursebook(new_target, tmp_path, *query)
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "course C1 version 2" in result.stderr
    assert "travellin" not in result.stderr
    assert coursebook(new_target, tmp_path, "verify").returncode == 3


def test_a_state_stored_as_text_is_a_verify_finding_and_named_elsewhere(
        tmp_path: Path) -> None:
    where = str(tmp_path / "store.db")
    assert coursebook(where, tmp_path, "init").returncode == 0
    assert coursebook(where, tmp_path, "import", "-",
                      stdin=lines(REG, OPEN, GIVE)).returncode == 0
    raw = Raw("sqlite", where)
    position, _ = raw.position_of(b"travelling")
    raw.sql("UPDATE {table} SET state=CAST(state AS TEXT) WHERE {id}=?", (position,))
    found = coursebook(where, tmp_path, "--format", "json", "verify")
    assert found.returncode == 3, found.stderr
    assert f'"position":{position}' in found.stdout.replace(" ", "")
    for query in (["course", "show", "C1"], ["compliance", "--as-of", "2024-03-06"],
                  ["projections", "rebuild"]):
        result = coursebook(where, tmp_path, *query)
        assert result.returncode == 3, (query, result.stderr)
        assert "stored as bytes" in result.stderr
