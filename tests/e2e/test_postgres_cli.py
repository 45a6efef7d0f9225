"""The command line on PostgreSQL: selecting it, and failing clearly (exit 4) when the
server, the database or the store is not there: one line on stderr, no traceback, never
the password."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import pg
from tests.e2e.test_cli import COURSE, jsonl

CLI = [sys.executable, "-m", "coursebook.adapters.entrypoints.cli"]
PASSWORD = "s3cret-Pa55"


def run(*args: str, stdin: bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "COURSEBOOK_DB"}
    return subprocess.run([*CLI, *args], input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**base, **(env or {})})


def assert_clear_store_failure(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 4, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr
    assert result.stderr.startswith("coursebook: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def free_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("args", [["course", "show", "C1"], ["init"],
                                  ["compliance"], ["import", "-"]])
def test_an_unreachable_server_exits_4_with_the_reason_and_no_password(
        args: list[str]) -> None:
    url = f"postgresql://clinic:{PASSWORD}@127.0.0.1:{free_port()}/coursebook"
    result = run("--db", url, *args, stdin=b"")
    assert_clear_store_failure(result, "cannot open the store at "
                               "postgresql://clinic@127.0.0.1:", "Connection refused")


def test_the_environment_selects_postgresql_too() -> None:
    url = f"postgresql://clinic:{PASSWORD}@127.0.0.1:{free_port()}/coursebook"
    result = run("course", "show", "C1", env={"COURSEBOOK_DB": url})
    assert_clear_store_failure(result, "Connection refused")


def test_an_unsupported_url_parameter_is_refused_rather_than_ignored() -> None:
    result = run("--db", "postgresql://u@127.0.0.1/db?sslmode=require", "course", "show", "C")
    assert_clear_store_failure(result, "sslmode")


@pytest.mark.postgres
def test_a_missing_database_exits_4_naming_it() -> None:
    url = pg.SERVER.rsplit("/", 1)[0].replace("postgres@", f"postgres:{PASSWORD}@") \
        + "/no_such_coursebook_db"
    result = run("--db", url, "course", "show", "C1")
    assert_clear_store_failure(result, 'database "no_such_coursebook_db" does not exist')


@pytest.mark.postgres
class TestOnTheServer:
    def test_a_schema_without_a_store_exits_4_asking_for_init(self) -> None:
        target = pg.new_target()
        for args in (["course", "show", "C1"], ["compliance"], ["import", "-"]):
            assert_clear_store_failure(run("--db", target, *args, stdin=b""),
                                       "no coursebook store", "coursebook init")

    def test_init_makes_the_schema_then_import_and_queries_work_through_the_environment(
            self, tmp_path: Path) -> None:
        target = pg.new_target()
        try:
            env = {"COURSEBOOK_DB": target}
            first = run("--format", "json", "init", "--timezone", "Europe/Paris", env=env)
            assert first.returncode == 0, first.stderr
            assert json.loads(first.stdout)["timezone"] == "Europe/Paris"
            assert run("init", env=env).returncode == 0  # idempotent
            source = tmp_path / "c.jsonl"
            source.write_bytes(jsonl(*COURSE))
            imported = run("--format", "json", "import", str(source), env=env)
            assert json.loads(imported.stdout) == {"applied": 4, "duplicates": 0,
                                                   "rejected": []}
            again = run("--format", "json", "import", str(source), env=env)
            assert json.loads(again.stdout)["duplicates"] == 4
            shown = run("--format", "json", "course", "show", "C1", env=env)
            assert json.loads(shown.stdout)["version"] == 3
        finally:
            pg.drop_schema(target)
