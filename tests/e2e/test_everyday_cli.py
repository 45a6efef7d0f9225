"""Everyday use of the command line (on SQLite): tables that never lose data (complete TSV
rows when standard output is not a terminal, folded cells on a narrow terminal), local
times in the clinic zone, one error style, global options after the sub-command, dates as
people type them, exports that write a file and say so in one line, counts that mean one
thing, and the calendar as iCalendar clients read it (icalendar and vobject)."""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import io
import json
import os
import pty
import re
import struct
import subprocess
import termios
from pathlib import Path
from typing import Any

import icalendar
import pytest
import vobject

from tests.e2e.test_cli import CLI, COURSE, cmd, coursebook, jsonl

LONG_REASON = ("the patient travels abroad for several weeks and asked to bring the "
               "session forward; risk discussed and accepted in writing")
SCHEDULE = cmd("schedule_session", 5, "2024-03-06T09:00:00+01:00", course_id="C1",
               session_no=2, planned_at="2024-03-20T10:30:00+01:00",
               practitioner_id="dr-ada")
MOVE = cmd("reschedule_session", 6, "2024-03-07T09:00:00+01:00", course_id="C1",
           session_no=2, planned_at="2024-03-22T15:00:00+01:00", reason="patient asked")


def make_store(tmp_path: Path, *extra: dict[str, Any], name: str = "store.db") -> Path:
    db = tmp_path / name
    assert coursebook("init", "--timezone", "Europe/Paris", db=db).returncode == 0
    source = tmp_path / f"{name}.jsonl"
    source.write_bytes(jsonl(*COURSE, *extra))
    done = coursebook("import", str(source), db=db)
    assert done.returncode == 0, done.stderr
    return db


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("everyday"), SCHEDULE)


def text(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stdout.decode()


def on_terminal(*args: str, db: Path, columns: int) -> str:
    """Runs the CLI with its standard output on a pseudo-terminal `columns` wide."""
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**{k: v for k, v in os.environ.items() if k != "COURSEBOOK_DB"},
           "COLUMNS": str(columns), "TERM": "xterm", "NO_COLOR": "1"}
    process = subprocess.Popen([*CLI, "--db", str(db), *args], stdout=secondary,
                               stderr=subprocess.PIPE, env=env)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=60) == 0
    os.close(main)
    screen = b"".join(chunks).decode().replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)  # styles, not text


class TestTablesNeverLoseData:
    def test_not_a_terminal_history_is_complete_tab_separated_rows(self, store: Path) -> None:
        documents = json.loads(text(coursebook("--format", "json", "course", "history", "C1",
                                               db=store)))
        lines = text(coursebook("course", "history", "C1", db=store)).splitlines()
        assert lines[0] == "# History of C1 (times in Europe/Paris)"
        rows = list(csv.reader(lines[1:], delimiter="\t"))
        assert rows[0] == ["v", "at", "event", "actor", "summary", "next session"]
        assert len(rows) == 1 + len(documents)
        for row, document in zip(rows[1:], documents, strict=True):
            assert row[0] == str(document["version"])
            assert row[4] == document["summary"]  # whole, however long
            assert row[2] == document["event"]
        assert "…" not in "\n".join(lines)

    def test_not_a_terminal_tabs_and_newlines_in_a_cell_are_escaped(
            self, tmp_path: Path) -> None:
        db = make_store(tmp_path, cmd("pause_course", 5, "2024-03-06T09:00:00+01:00",
                                      course_id="C1", reason="away\tfor a\nmonth"))
        out = text(coursebook("audit", "--course", "C1", db=db))
        assert "away\\tfor a\\nmonth" in out
        assert all(line.count("\t") == 6 for line in out.splitlines()[1:])

    def test_a_narrow_terminal_folds_cells_and_cuts_none(self, store: Path) -> None:
        documents = json.loads(text(coursebook("--format", "json", "course", "history", "C1",
                                               db=store)))
        out = on_terminal("course", "history", "C1", db=store, columns=60)
        assert "…" not in out
        assert max(len(line) for line in out.splitlines()) <= 60
        kept = re.sub(r"[\s│┃┏┓┗┛┡┩└┘━─┳┻╇┼╋┬┴├┤]", "", out)
        for document in documents:  # every character of every summary is on the screen
            assert len(kept) >= len(re.sub(r"\s", "", document["summary"]))
        words = {w for d in documents for w in d["summary"].split() if len(w) <= 8}
        assert all(w in out for w in words)


class TestPeopleOutputs:
    def test_course_show_in_the_clinic_zone_with_a_labelled_window(self, store: Path) -> None:
        out = text(coursebook("course", "show", "C1", db=store))
        assert "times in Europe/Paris" in out
        assert "last session\t2024-03-05 10:00" in out  # 09:00Z given, 10:00 in Paris
        assert re.search(r"next\t#2: earliest \S+, target \S+, latest \S+, "
                         r"planned 2024-03-20 10:30", out)

    def test_plurals_are_right(self, store: Path, tmp_path: Path) -> None:
        out = text(coursebook("calendar", "--from", "2024-03-01", "--to", "2024-03-31",
                              db=store))
        assert "1 session to book" in out
        ics = tmp_path / "one.ics"
        done = coursebook("calendar", "--from", "2024-03-01", "--to", "2024-03-31",
                          "--ics", str(ics), db=store)
        assert text(done) == (f"wrote 1 calendar entry (2024-03-01 .. 2024-03-31) to {ics}\n")


class TestErrors:
    def test_global_options_after_the_sub_command(self, store: Path) -> None:
        done = subprocess.run([*CLI, "course", "show", "C1", "--format", "json", "--db",
                               str(store)], capture_output=True, check=False)
        assert done.returncode == 0
        assert json.loads(done.stdout)["course_id"] == "C1"

    def test_one_error_style_with_a_hint(self, store: Path) -> None:
        for args in (["course", "show", "C1", "--bogus"], ["course", "show", "C1",
                                                           "--as-of", "yesterday"],
                     ["calendar", "--from", "2024-03-10", "--to", "2024-03-01"],
                     ["projections", "rebuild", "findings"]):
            done = coursebook(*args, db=store)
            assert done.returncode == 2, args
            lines = done.stderr.decode().splitlines()
            assert lines[0].startswith("coursebook: error: "), args
            assert lines[1].startswith("  hint: "), args

    def test_the_option_at_fault_is_named(self, store: Path) -> None:
        done = coursebook("calendar", "--from", "2024-03-10", "--to", "2024-03-01", db=store)
        assert done.stderr.decode().startswith("coursebook: error: --from: ")
        done = coursebook("audit", "--since", "soon", db=store)
        assert done.stderr.decode().startswith("coursebook: error: --since: ")

    @pytest.mark.parametrize(("as_of", "given"), [
        ("2024-03-05", 0), ("2024-03-06", 1), ("2024-03-05T10:30", 1),
        ("2024-03-05 09:59", 0), ("2024-03-05T09:30:00Z", 1)])
    def test_dates_as_people_type_them(self, store: Path, as_of: str, given: int) -> None:
        # Session 1 was given at 10:00 in Paris on 2024-03-05 (09:00Z).
        done = coursebook("--format", "json", "course", "show", "C1", "--as-of", as_of,
                          db=store)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["sessions_given"] == given

    def test_a_failed_init_leaves_nothing_behind(self, tmp_path: Path) -> None:
        done = coursebook("init", "--timezone", "Paris", db=tmp_path / "tz.db")
        assert done.returncode == 2
        assert b"hint: " in done.stderr
        assert list(tmp_path.iterdir()) == []

    def test_init_without_a_zone_says_it_took_utc(self, tmp_path: Path) -> None:
        done = subprocess.run([*CLI, "--db", str(tmp_path / "u.db"), "init"],
                              capture_output=True, check=False,
                              env={**os.environ, "TZ": "Europe/Paris"})
        assert done.returncode == 0
        message = done.stderr.decode()
        assert "the clinic zone is UTC" in message
        assert "init --timezone Europe/Paris" in message
        again = coursebook("init", db=tmp_path / "u.db")  # an existing store: nothing said
        assert again.stderr == b""

    def test_audit_of_an_unknown_course_is_not_found(self, store: Path) -> None:
        done = coursebook("--format", "json", "audit", "--course", "NOPE", db=store)
        assert done.returncode == 1
        assert json.loads(done.stdout)["code"] == "NOT_FOUND"


class TestCounts:
    def test_verify_counts_events_apart_from_other_records(self, store: Path) -> None:
        verified = json.loads(text(coursebook("--format", "json", "verify", db=store)))
        trail = json.loads(text(coursebook("--format", "json", "audit", db=store)))
        assert verified["events"] == len(trail)
        assert verified["other_records"] >= len(COURSE) + 1  # a receipt per command
        assert f"ok: {len(trail)} events (and " in text(coursebook("verify", db=store))

    def test_projections_status_compares_with_the_last_event_of_its_kinds(
            self, store: Path) -> None:
        views = json.loads(text(coursebook("--format", "json", "projections", "status",
                                           db=store)))
        for view in views:
            assert view["up_to_date"]
            assert view["position"] == view["last_event"] <= view["head"]

    def test_rebuild_reports_the_log_read_and_the_events(self, store: Path) -> None:
        done = json.loads(text(coursebook("--format", "json", "projections", "rebuild",
                                          db=store)))
        head = json.loads(text(coursebook("--format", "json", "projections", "status",
                                          db=store)))[0]["head"]
        assert all(r["log_read"] == head and 0 < r["events"] <= head for r in done["rebuilt"])


class TestExports:
    def test_audit_csv_writes_the_file_and_one_line(self, store: Path, tmp_path: Path) -> None:
        target = tmp_path / "trail.csv"
        done = coursebook("audit", "--csv", str(target), db=store)
        trail = json.loads(text(coursebook("--format", "json", "audit", db=store)))
        assert text(done) == f"wrote {len(trail)} audit rows to {target}\n"
        assert done.stderr == b""
        assert len(list(csv.reader(io.StringIO(target.read_text())))) == 1 + len(trail)
        quiet = coursebook("audit", "--csv", str(target), "--quiet", "--force",
                           db=store)
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, b"", b"")

    def test_audit_since_until_and_limit(self, store: Path) -> None:
        trail = json.loads(text(coursebook("--format", "json", "audit", db=store)))
        moment = trail[2]["recorded_at"]
        since = json.loads(text(coursebook("--format", "json", "audit", "--since", moment,
                                           db=store)))
        until = json.loads(text(coursebook("--format", "json", "audit", "--until", moment,
                                           db=store)))
        assert until + since == trail
        assert trail[2] in since
        limited = json.loads(text(coursebook("--format", "json", "audit", "--limit", "2",
                                             db=store)))
        assert limited == trail[:2]

    def test_compliance_html_writes_the_page_and_one_line(self, store: Path,
                                                          tmp_path: Path) -> None:
        page = tmp_path / "c.html"
        done = coursebook("compliance", "--as-of", "2024-06-01", "--html", str(page),
                          db=store)
        assert done.returncode == 0
        assert text(done).startswith("wrote the compliance page (")
        assert len(text(done).splitlines()) == 1
        assert page.read_text().startswith("<!DOCTYPE html>")

    def test_import_logs_one_line_per_batch_and_per_rejected_line(
            self, tmp_path: Path) -> None:
        db = tmp_path / "log.db"
        assert coursebook("init", "--timezone", "Europe/Paris", db=db).returncode == 0
        source = tmp_path / "c.jsonl"
        source.write_bytes(jsonl(*COURSE) + jsonl(cmd("give_session", 9, "2024-03-06T10:00:00"
                                                      "+01:00", course_id="C1",
                                                      products=[], areas=[], dose_ml=1)))
        done = coursebook("import", str(source), db=db)
        logged = [json.loads(line) for line in done.stderr.decode().splitlines()]
        assert [e["event"] for e in logged if e["event"] == "batch"] == ["batch"]
        commands = [e for e in logged if e["event"] == "command"]
        assert [e["outcome"] for e in commands] == ["rejected"]
        debug = coursebook("--log-level", "debug", "import", str(source), db=db)
        assert sum(b'"event":"command"' in line
                   for line in debug.stderr.splitlines()) == len(COURSE) + 1


def calendar_file(db: Path, tmp_path: Path, name: str) -> bytes:
    target = tmp_path / name
    done = coursebook("calendar", "--from", "2024-03-01", "--to", "2024-04-30", "--ics",
                      str(target), db=db)
    assert done.returncode == 0, done.stderr
    return target.read_bytes()


def events_of(data: bytes) -> list[Any]:
    parsed = list(vobject.readComponents(data.decode()))  # a second, independent reader
    assert len(parsed) == 1
    return list(icalendar.Calendar.from_ical(data).walk("VEVENT"))


class TestCalendarExport:
    def test_what_clients_need_read_by_two_parsers(self, tmp_path: Path) -> None:
        db = make_store(tmp_path, SCHEDULE)
        data = calendar_file(db, tmp_path, "a.ics")
        (event,) = events_of(data)
        calendar = vobject.readOne(data.decode())
        (vevent,) = calendar.vevent_list
        assert vevent.uid.value == str(event["UID"])
        assert vevent.dtstart.value == dt.datetime(2024, 3, 20, 10, 30,
                                                   tzinfo=vevent.dtstart.value.tzinfo)
        assert vevent.dtstart.value.utcoffset() == dt.timedelta(hours=1)
        assert "DTSTAMP" in event
        assert int(event["SEQUENCE"]) >= 1
        assert "LAST-MODIFIED" in event
        (zone,) = icalendar.Calendar.from_ical(data).walk("VTIMEZONE")
        assert str(zone["TZID"]) == "Europe/Paris"
        assert {c.name for c in zone.subcomponents} == {"STANDARD", "DAYLIGHT"}
        assert b"2037" not in data  # no list of dates up to 2038

    def test_a_moved_session_keeps_its_uid_with_a_higher_sequence(
            self, tmp_path: Path) -> None:
        before = make_store(tmp_path, SCHEDULE, name="before.db")
        (first,) = events_of(calendar_file(before, tmp_path, "before.ics"))
        source = tmp_path / "move.jsonl"
        source.write_bytes(jsonl(MOVE))
        assert coursebook("import", str(source), db=before).returncode == 0
        (moved,) = events_of(calendar_file(before, tmp_path, "after.ics"))
        assert moved["UID"] == first["UID"]
        assert int(moved["SEQUENCE"]) > int(first["SEQUENCE"])
        # iCalendar times are to the second and both imports may fall in one: SEQUENCE
        # orders the revisions, LAST-MODIFIED never goes back.
        assert moved["LAST-MODIFIED"].dt >= first["LAST-MODIFIED"].dt
        assert moved["DTSTART"].dt != first["DTSTART"].dt

    def test_uids_differ_between_two_clinics(self, tmp_path: Path) -> None:
        one = make_store(tmp_path, SCHEDULE, name="one.db")
        two = make_store(tmp_path, SCHEDULE, name="two.db")
        (a,) = events_of(calendar_file(one, tmp_path, "one.ics"))
        (b,) = events_of(calendar_file(two, tmp_path, "two.ics"))
        assert a["UID"] != b["UID"]
        (again,) = events_of(calendar_file(one, tmp_path, "one-again.ics"))
        assert again["UID"] == a["UID"]
