"""The command line as installed (CONTRACT section 5), run as a separate process.

Acts are dated in 2024 so that they lie in the past of the real clock the command line
uses. One store is built per module for the read-only queries; tests that change a
store make their own.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CLI = [sys.executable, "-m", "coursebook.adapters.entrypoints.cli"]


def coursebook(*args: str, db: Path | str | None, stdin: bytes | None = None,
               cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "COURSEBOOK_DB"}
    prefix = [] if db is None else ["--db", str(db)]
    return subprocess.run([*CLI, *prefix, *args], input=stdin, capture_output=True,
                          env=env, cwd=cwd, timeout=60, check=False)


def one_json_document(result: subprocess.CompletedProcess[bytes]) -> Any:
    """Standard output holds exactly one JSON document (json.loads refuses any more)."""
    return json.loads(result.stdout.decode("utf-8"))


def jsonl(*commands: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(c).encode() + b"\n" for c in commands)


def cmd(name: str, n: int, at: str, /, actor: str = "dr-ada", **fields: Any) -> dict[str, Any]:
    return {"command": name, "command_id": f"e2e-{n}", "at": at, "actor": actor, **fields}


SCREENING = {"pregnant": False, "breastfeeding": False, "active_infection_at_site": False,
             "bleeding_disorder": False, "anticoagulants": False,
             "autoimmune_disease": False, "diabetes": False, "heart_condition": False,
             "allergies": [], "medications": []}
PRODUCT = {"name": "Hyaluronic acid", "lot": "L-7", "expires_on": "2030-01-01"}
COURSE = [
    cmd("register_practitioner", 1, "2024-01-02T09:00:00+01:00", actor="admin",
        practitioner_id="dr-ada", name="Ada", role="physician", license_number="L1",
        license_expires_on="2030-01-01"),
    cmd("open_course", 2, "2024-03-04T09:00:00+01:00", actor="admin", course_id="C1",
        patient_ref="P1", indication="skin_rejuvenation",
        patient={"name": "Odile Brunet", "birth_date": "1980-05-06"}),
    cmd("record_consultation", 3, "2024-03-04T10:00:00+01:00", course_id="C1",
        consent=True, screening=SCREENING),
    cmd("give_session", 4, "2024-03-05T10:00:00+01:00", course_id="C1",
        products=[PRODUCT], areas=["face"], dose_ml=2, anaesthetic=None),
]


@pytest.fixture(scope="module")
def store(module_target: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store holding COURSE, on each persistent kind (SQLite file, PostgreSQL schema)."""
    assert coursebook("init", "--timezone", "Europe/Paris", db=module_target).returncode == 0
    source = tmp_path_factory.mktemp("e2e-source") / "course.jsonl"
    source.write_bytes(jsonl(*COURSE))
    assert coursebook("import", str(source), db=module_target).returncode == 0
    return module_target


class TestInit:
    def test_creates_a_store_and_is_idempotent_keeping_the_zone(self, new_target: str) -> None:
        db = new_target
        first = coursebook("--format", "json", "init", "--timezone", "Asia/Tokyo", db=db)
        assert first.returncode == 0
        assert one_json_document(first)["timezone"] == "Asia/Tokyo"
        again = coursebook("--format", "json", "init", db=db)
        assert again.returncode == 0
        assert one_json_document(again)["timezone"] == "Asia/Tokyo"

    def test_refuses_another_zone_for_an_existing_store_with_exit_2(
            self, store: str) -> None:
        result = coursebook("init", "--timezone", "UTC", db=store)
        assert result.returncode == 2
        assert result.stdout == b""
        assert b"Europe/Paris" in result.stderr

    def test_the_same_zone_again_is_accepted(self, store: str) -> None:
        assert coursebook("init", "--timezone", "Europe/Paris", db=store).returncode == 0

    def test_an_unknown_zone_is_a_usage_error(self, tmp_path: Path) -> None:
        result = coursebook("init", "--timezone", "Mars/Olympus", db=tmp_path / "x.db")
        assert result.returncode == 2

    def test_the_default_store_is_coursebook_db_in_the_working_directory(
            self, tmp_path: Path) -> None:
        assert coursebook("init", db=None, cwd=tmp_path).returncode == 0
        assert (tmp_path / "coursebook.db").is_file()


class TestImport:
    def test_reports_each_rejected_line_and_exits_1(self, new_target: str, tmp_path: Path) -> None:
        db = new_target
        coursebook("init", db=db)
        source = tmp_path / "in.jsonl"
        source.write_bytes(jsonl(*COURSE[:2]) + b"\n{oops\n" + jsonl(COURSE[1])
                           + jsonl({**COURSE[2], "command": "consult"}))
        result = coursebook("--format", "json", "import", str(source), db=db)
        assert result.returncode == 1
        report = one_json_document(result)
        assert report["applied"] == 2
        assert report["duplicates"] == 1
        assert [(r["line"], r["command_id"], r["code"]) for r in report["rejected"]] == [
            (4, None, "INVALID"), (6, "e2e-3", "UNKNOWN_COMMAND")]
        assert all(r["message"] for r in report["rejected"])

    def test_a_clean_file_exits_0(self, new_target: str, tmp_path: Path) -> None:
        db = new_target
        coursebook("init", db=db)
        source = tmp_path / "in.jsonl"
        source.write_bytes(jsonl(*COURSE))
        result = coursebook("--format", "json", "import", str(source), db=db)
        assert result.returncode == 0
        assert one_json_document(result) == {"applied": 4, "duplicates": 0, "rejected": []}

    def test_reads_standard_input_for_dash_and_logs_to_standard_error(
            self, new_target: str) -> None:
        db = new_target
        coursebook("init", db=db)
        result = coursebook("--format", "json", "--log-level", "debug", "import", "-", db=db,
                            stdin=b"\xef\xbb\xbf" + jsonl(*COURSE).replace(b"\n", b"\r\n"))
        assert result.returncode == 0
        assert one_json_document(result)["applied"] == 4
        log_lines = [json.loads(line) for line in result.stderr.splitlines() if line]
        assert [entry["command"] for entry in log_lines
                if entry["event"] == "command"] == [c["command"] for c in COURSE]
        assert b"Odile" not in result.stderr

    def test_log_lines_go_to_the_log_file_when_one_is_given(self, tmp_path: Path) -> None:
        db, log = tmp_path / "s.db", tmp_path / "coursebook.log"
        coursebook("init", db=db)
        result = coursebook("--log-file", str(log), "import", "-", db=db,
                            stdin=jsonl(*COURSE[:2]))
        assert result.returncode == 0
        assert result.stderr == b""
        assert b"applied 2" in result.stdout
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        # One line per batch at the default level (per command: rejected ones, or debug).
        assert [(e["event"], e["commands"], e["applied"]) for e in entries] == [
            ("batch", 2, 2)]
        assert "Odile" not in log.read_text()

    def test_a_missing_file_exits_2(self, store: str, tmp_path: Path) -> None:
        result = coursebook("import", str(tmp_path / "absent.jsonl"), db=store)
        assert result.returncode == 2

    def test_a_target_without_a_store_exits_4(self, tmp_path: Path) -> None:
        source = tmp_path / "in.jsonl"
        source.write_bytes(jsonl(*COURSE))
        result = coursebook("import", str(source), db=tmp_path / "absent.db")
        assert result.returncode == 4
        assert not (tmp_path / "absent.db").exists()


class TestCourseShow:
    def test_prints_exactly_one_json_document(self, store: str) -> None:
        result = coursebook("--format", "json", "course", "show", "C1", db=store)
        assert result.returncode == 0
        course = one_json_document(result)
        assert course["course_id"] == "C1"
        assert course["status"] == "active"
        assert course["version"] == 3
        assert course["next"]["earliest"] == "2024-03-19"

    def test_shows_a_table_by_default(self, store: str) -> None:
        result = coursebook("course", "show", "C1", db=store)
        assert result.returncode == 0
        text = result.stdout.decode()
        assert "C1" in text
        assert "active" in text
        assert "skin_rejuvenation" in text

    def test_time_travel_options(self, store: str) -> None:
        by_version = coursebook("--format", "json", "course", "show", "C1", "--version",
                                "1", db=store)
        assert one_json_document(by_version)["status"] == "open"
        as_of = coursebook("--format", "json", "course", "show", "C1", "--as-of",
                           "2024-03-04T09:30:00+01:00", db=store)
        assert one_json_document(as_of)["version"] == 1
        history = one_json_document(coursebook("--format", "json", "course", "history",
                                               "C1", db=store))
        known_at = coursebook("--format", "json", "course", "show", "C1", "--known-at",
                              history[-1]["recorded_at"], db=store)
        assert one_json_document(known_at)["version"] == 3

    def test_an_unknown_course_exits_1_with_not_found(self, store: str) -> None:
        result = coursebook("--format", "json", "course", "show", "C404", db=store)
        assert result.returncode == 1
        assert one_json_document(result)["code"] == "NOT_FOUND"

    def test_a_target_without_a_store_exits_4(self, tmp_path: Path) -> None:
        result = coursebook("--format", "json", "course", "show", "C1",
                            db=tmp_path / "absent.db")
        assert result.returncode == 4
        assert result.stdout == b""

    def test_a_file_that_is_not_a_store_exits_4_and_is_left_alone(
            self, tmp_path: Path) -> None:
        notes = tmp_path / "notes.txt"
        notes.write_bytes(b"not a database\n")
        result = coursebook("course", "show", "C1", db=notes)
        assert result.returncode == 4
        assert notes.read_bytes() == b"not a database\n"

    def test_init_refuses_another_sqlite_database_and_leaves_it_alone(
            self, tmp_path: Path) -> None:
        other = tmp_path / "crm.db"
        with sqlite3.connect(other) as conn:
            conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        before = other.read_bytes()
        result = coursebook("init", "--timezone", "Europe/Paris", db=other)
        assert result.returncode == 4
        assert b"not a coursebook store" in result.stderr
        assert other.read_bytes() == before

    def test_init_accepts_an_empty_file(self, tmp_path: Path) -> None:
        empty = tmp_path / "empty.db"
        empty.touch()
        assert coursebook("init", db=empty).returncode == 0
        assert coursebook("course", "show", "C1", db=empty).returncode == 1

    def test_the_version_and_as_of_combine(self, store: str) -> None:
        # The first 3 events, of those the ones valid by 10:30 on 03-04: open and consult.
        result = coursebook("--format", "json", "course", "show", "C1", "--version", "3",
                            "--as-of", "2024-03-04T10:30:00+01:00", db=store)
        assert result.returncode == 0
        document = json.loads(result.stdout)
        assert (document["version"], document["sessions_given"]) == (2, 0)

    @pytest.mark.parametrize("value", ["2024-03-31T02:30:00", "yesterday"])  # 02:30: a gap
    def test_a_bad_as_of_exits_2(self, store: str, value: str) -> None:
        result = coursebook("course", "show", "C1", "--as-of", value, db=store)
        assert result.returncode == 2
        assert b"--as-of" in result.stderr


class TestCourseHistory:
    def test_lists_every_version_as_json(self, store: str) -> None:
        result = coursebook("--format", "json", "course", "history", "C1", db=store)
        assert result.returncode == 0
        history = one_json_document(result)
        assert [h["event"] for h in history] == [
            "Opened", "ConsultationRecorded", "SessionGiven"]
        assert set(history[0]) == {"version", "event", "at", "recorded_at", "actor",
                                   "summary", "next_before", "next_after"}
        assert history[0]["next_before"] is None
        assert history[2]["next_after"]["session_no"] == 2

    def test_shows_a_table_by_default(self, store: str) -> None:
        result = coursebook("course", "history", "C1", db=store)
        assert result.returncode == 0
        assert "SessionGiven" in result.stdout.decode()

    def test_an_unknown_course_exits_1_with_not_found(self, store: str) -> None:
        result = coursebook("--format", "json", "course", "history", "C404", db=store)
        assert result.returncode == 1
        assert one_json_document(result)["code"] == "NOT_FOUND"
