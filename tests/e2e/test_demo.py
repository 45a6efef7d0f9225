"""`coursebook demo` from the command line: where it builds, what it prints, what it refuses."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coursebook.adapters.entrypoints.sample_clinic import DEMO_ZONE, FEATURED_COURSE, ClinicScript
from coursebook.bootstrap import open_store
from coursebook.domain.course import TreatmentCourse
from coursebook.domain.protocols import default_catalogue
from tests import pg
from tests.unit.test_compliance_html import page_data

COURSEBOOK = [str(Path(sys.executable).with_name("coursebook"))]


def coursebook(*args: str, cwd: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COURSEBOOK_DB"} | extra_env
    return subprocess.run([*COURSEBOOK, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def course_states(target: Path) -> dict[str, dict[str, Any]]:
    """Every course in the store, found from its log (not from the demo's output)."""
    app = open_store(str(target))
    try:
        notifications = app.recorder.select_notifications(start=1, limit=100_000)
        opened = [e.course_id for e in map(app.mapper.to_domain_event, notifications)
                  if isinstance(e, TreatmentCourse.Opened)]
        return {course_id: app.get_course(course_id) for course_id in opened}
    finally:
        app.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The demo run once in an empty directory, in the default table format."""
    cwd = tmp_path_factory.mktemp("demo")
    return cwd, coursebook("demo", cwd=cwd)


@pytest.fixture(scope="module")
def json_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, str]:
    """The demo run once in an empty directory, as JSON, its log lines in a file."""
    cwd = tmp_path_factory.mktemp("demo-json")
    result = coursebook("--log-file", "demo.log", "--format", "json", "demo", cwd=cwd)
    return cwd, result, (cwd / "demo.log").read_text()


def test_demo_builds_its_store_beside_the_user_and_says_where(
        first_run: tuple[Path, Any]) -> None:
    cwd, result = first_run
    assert result.returncode == 0, result.stderr
    store = cwd / "coursebook-demo.db"
    assert store.is_file()
    assert not (cwd / "coursebook.db").exists()
    assert str(store.resolve()) in result.stdout
    assert "coursebook --db coursebook-demo.db course show demo-skin-01" in result.stdout


def test_the_demo_store_holds_every_kind_of_course(first_run: tuple[Path, Any]) -> None:
    cwd, _ = first_run
    states = course_states(cwd / "coursebook-demo.db")
    assert 40 <= len(states) <= 60
    assert {s["status"] for s in states.values()} == {
        "open", "active", "paused", "maintenance", "completed", "discontinued"}
    assert {s["indication"] for s in states.values()} == {
        "skin_rejuvenation", "hair_restoration", "fat_reduction", "cellulite", "pigmentation"}
    blocked = {code for s in states.values() for code in s["blocked_by"]}
    assert {"NO_CONSENT", "REACTION_UNREVIEWED", "COURSE_PAUSED", "NO_CONSULTATION"} <= blocked
    assert any(s["contraindications"]["overridden"] for s in states.values())


def test_the_table_output_shows_times_in_the_clinic_zone(first_run: tuple[Path, Any]) -> None:
    """The demo's own sections read as the rest of the command line: local times in the
    clinic zone, the zone named; never a UTC `…Z` time in a table."""
    cwd, result = first_run
    app = open_store(str(cwd / "coursebook-demo.db"))
    try:
        history = app.get_history(FEATURED_COURSE)
    finally:
        app.close()
    zone = ZoneInfo(DEMO_ZONE)
    for entry in history:
        local = dt.datetime.fromisoformat(entry["at"]).astimezone(zone)
        assert local.strftime("%Y-%m-%d %H:%M") in result.stdout
    assert f"valid time in {DEMO_ZONE}" in result.stdout
    assert f"times in {DEMO_ZONE}" in result.stdout
    assert not re.search(r"\d \d\d:\d\dZ", result.stdout)  # a time in a table, in UTC


def test_the_table_output_shows_the_rejected_codes(first_run: tuple[Path, Any]) -> None:
    _, result = first_run
    for code in ("TOO_SOON", "NOT_AUTHORIZED", "ALLERGEN", "CONTRAINDICATED", "FUTURE_FACT"):
        assert code in result.stdout


def test_rerunning_recreates_the_default_store(json_run: tuple[Path, Any, str]) -> None:
    cwd, first, _ = json_run
    store = cwd / "coursebook-demo.db"
    before = course_states(store)
    (cwd / "coursebook-demo.db.key").write_text("stale key of the previous demo")
    second = coursebook("--format", "json", "demo", cwd=cwd)
    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    counts = json.loads(second.stdout)["commands"]
    assert counts["duplicates"] == 1  # the demo's own deliberate retry, nothing more
    assert counts["applied"] == json.loads(first.stdout)["commands"]["applied"]
    assert set(course_states(store)) == set(before)
    key = cwd / "coursebook-demo.db.key"
    assert not key.exists() or key.read_text() != "stale key of the previous demo"


def test_db_naming_an_existing_store_exits_2_and_leaves_it_untouched(tmp_path: Path) -> None:
    assert coursebook("--db", "clinic.db", "init", cwd=tmp_path).returncode == 0
    store = tmp_path / "clinic.db"
    before = digest(store)
    result = coursebook("--db", "clinic.db", "demo", cwd=tmp_path)
    assert result.returncode == 2
    assert "clinic.db" in result.stderr
    assert result.stdout == ""
    assert digest(store) == before
    assert not (tmp_path / "coursebook-demo.db").exists()


def test_the_environment_target_is_not_where_the_demo_goes(tmp_path: Path) -> None:
    assert coursebook("--db", "work.db", "init", cwd=tmp_path).returncode == 0
    before = digest(tmp_path / "work.db")
    result = coursebook("demo", cwd=tmp_path, COURSEBOOK_DB="work.db")
    assert result.returncode == 0, result.stderr
    assert digest(tmp_path / "work.db") == before
    assert (tmp_path / "coursebook-demo.db").is_file()


def test_db_naming_any_other_existing_file_exits_2_and_leaves_it_untouched(
        tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("not a store")
    result = coursebook("--db", "notes.txt", "demo", cwd=tmp_path)
    assert result.returncode == 2
    assert other.read_text() == "not a store"


def test_db_naming_a_new_path_builds_the_demo_there(tmp_path: Path) -> None:
    result = coursebook("--db", "elsewhere.db", "--format", "json", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["next"]["store"] == str((tmp_path / "elsewhere.db").resolve())
    assert len(course_states(tmp_path / "elsewhere.db")) == document["courses"]["total"]
    assert not (tmp_path / "coursebook-demo.db").exists()


def test_json_format_prints_exactly_one_document_of_every_section(
        json_run: tuple[Path, Any, str]) -> None:
    _, result, _ = json_run
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # fails on anything printed beside it
    assert list(document) == ["store", "commands", "courses", "featured", "calendar",
                              "compliance", "next"]
    assert document["calendar"]["sessions"] == len(document["calendar"]["entries"]) > 0
    assert document["compliance"]["findings"] == sum(
        c["count"] for c in document["compliance"]["counts"]) > 0
    page = Path(document["compliance"]["html"])
    assert page.is_file()
    assert all(course[3]["s"] for course in page_data(page.read_text(encoding="utf-8"))["c"]
               .values())  # each course with a warning has its timeline, drawn when opened
    assert document["commands"]["rejected"] == len(document["commands"]["rejections"])
    assert document["commands"]["unexpected"] == []
    assert document["featured"]["history"][0]["event"] == "Opened"
    assert "patient" not in document["featured"]["course"]


def test_no_personal_value_appears_in_any_output_or_log(
        first_run: tuple[Path, Any], json_run: tuple[Path, Any, str]) -> None:
    now = dt.datetime.now(dt.UTC)
    personal = ClinicScript(now, ZoneInfo(DEMO_ZONE), default_catalogue()).personal_values
    assert any("-" in v and v[:4].isdigit() for v in personal)  # birth dates among them
    (_, as_table), (_, as_json, log) = first_run, json_run
    assert (as_json.returncode, as_table.returncode) == (0, 0)
    assert '"command"' in log  # the log file did get the command lines
    page = Path(json.loads(as_json.stdout)["compliance"]["html"])  # its data block too
    outputs = [as_json.stdout, as_json.stderr, as_table.stdout, as_table.stderr, log,
               page.read_text(encoding="utf-8")]
    leaks = sorted({value for value in personal for text in outputs
                    if value.casefold() in text.casefold()})
    assert leaks == []


@pytest.fixture
def fresh_pg_database() -> Any:
    """A new, empty PostgreSQL store target (a schema of the session's test database)."""
    with pg.postgres_database() as target:
        yield target


@pytest.mark.postgres
def test_db_naming_a_postgresql_database_builds_there_once(
        tmp_path: Path, fresh_pg_database: str) -> None:
    first = coursebook("--db", fresh_pg_database, "--format", "json", "demo", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["commands"]["unexpected"] == []
    again = coursebook("--db", fresh_pg_database, "demo", cwd=tmp_path)
    assert again.returncode == 2
    assert "already holds a coursebook store" in again.stderr
    assert not (tmp_path / "coursebook-demo.db").exists()
