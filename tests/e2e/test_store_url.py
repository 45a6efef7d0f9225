"""The store URL at the edges: its password never printed (in any output or log line), a
schema of PostgreSQL's own or a repeated `schema=` refused, a malformed URL a clear
exit 4 (never an internal error)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from coursebook.adapters.entrypoints.cli import cli
from coursebook.adapters.storage.persistence import safe_target, store_env
from coursebook.errors import StoreUnavailable
from tests import pg
from tests.e2e.test_postgres_cli import PASSWORD, run

_BASE = "postgresql://postgres@127.0.0.1:5432/db"


def with_password(target: str) -> str:
    return target.replace("://postgres@", f"://postgres:{PASSWORD}@", 1)


@pytest.mark.parametrize("output", ["table", "json"])
@pytest.mark.postgres
def test_init_prints_the_url_without_its_password(output: str, tmp_path: Path) -> None:
    target = pg.new_target()
    try:
        log = tmp_path / "log.jsonl"
        result = run("--db", with_password(target), "--format", output,
                     "--log-file", str(log), "init")
        assert result.returncode == 0, result
        everything = result.stdout + result.stderr + log.read_text()
        assert PASSWORD not in everything
        assert pg.schema_of(target) in result.stdout  # still says which store
        if output == "json":
            assert json.loads(result.stdout)["store"] == target
    finally:
        pg.drop_schema(target)


@pytest.mark.postgres
def test_the_demo_hints_never_carry_the_password(tmp_path: Path) -> None:
    target = pg.new_target()
    try:
        result = CliRunner().invoke(cli, ["--db", with_password(target), "--format", "json",
                                          "--log-file", str(tmp_path / "log"), "demo"])
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert document["next"]["try"], "the demo gives hints with the target"
        assert PASSWORD not in result.output
        assert PASSWORD not in (tmp_path / "log").read_text()
    finally:
        pg.drop_schema(target)


@pytest.mark.parametrize("schema", ["information_schema", "pg_catalog", "pg_toast",
                                    "pg_anything"])
def test_a_schema_of_postgresql_itself_is_refused(schema: str) -> None:
    with pytest.raises(StoreUnavailable, match="belongs to PostgreSQL itself"):
        store_env(f"{_BASE}?schema={schema}", create=True)


@pytest.mark.parametrize("query", ["schema=a&schema=b", "schema=a&schema=a",
                                   "schema=&schema=b"])
def test_a_repeated_schema_is_refused_rather_than_the_last_one_taken(query: str) -> None:
    with pytest.raises(StoreUnavailable, match="more than once"):
        store_env(f"{_BASE}?{query}", create=False)


@pytest.mark.postgres
def test_init_in_information_schema_exits_4_and_creates_nothing() -> None:
    target = pg.new_target()  # makes the session database
    url = target.split("?")[0] + "?schema=information_schema"
    result = run("--db", url, "init")
    assert result.returncode == 4, result
    assert "belongs to PostgreSQL itself" in result.stderr
    with psycopg.connect(target.split("?")[0]) as conn:
        row = conn.execute("SELECT to_regclass('information_schema.coursebook_events')") \
            .fetchone()
    assert row == (None,)


@pytest.mark.parametrize("url", [
    f"postgresql://clinic:{PASSWORD}@[::1/db",
    f"postgresql://clinic:{PASSWORD}@[zz]:5432/db",
    f"postgresql://clinic:{PASSWORD}@[::1]:99999/db",
    f"postgresql://clinic:{PASSWORD}@host:port/db",
])
@pytest.mark.parametrize("args", [["course", "show", "C1"], ["init"], ["verify"]])
def test_a_malformed_url_exits_4_with_a_clear_message(url: str, args: list[str]) -> None:
    result = run("--db", url, *args)
    assert result.returncode == 4, result
    assert "not a valid postgresql:// URL" in result.stderr
    assert PASSWORD not in result.stderr
    assert "internal error" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_message_shows_only_the_schema_of_the_query() -> None:
    shown = safe_target(f"postgresql://u:{PASSWORD}@h:1/db?schema=s&password={PASSWORD}")
    assert shown == "postgresql://u@h:1/db?schema=s"
