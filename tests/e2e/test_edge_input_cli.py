"""Hostile input through the command line, on each store kind: a usage error or a
rejected line with a clear message, never exit 70, never unbounded memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import COURSE, coursebook, jsonl, store  # noqa: F401 (fixture)


@pytest.mark.parametrize("value", ["99999999999999999999999", "9223372036854775808"])
def test_a_version_beyond_64_bits_is_a_usage_error_naming_the_option(
        store: str, value: str) -> None:  # noqa: F811
    result = coursebook("course", "show", "C1", "--version", value, db=store)
    assert result.returncode == 2, result
    assert b"--version" in result.stderr
    assert b"internal error" not in result.stderr


def test_the_largest_version_is_past_the_last_one(store: str) -> None:  # noqa: F811
    result = coursebook("course", "show", "C1", "--version", str(2**63 - 1), db=store)
    assert result.returncode == 1, result
    assert b"NOT_FOUND" in result.stderr


def test_a_line_nested_too_deep_is_rejected_and_the_report_kept(
        store: str, tmp_path: Path) -> None:  # noqa: F811
    deep: object = 1
    for _ in range(300):
        deep = {"a": deep}
    source = tmp_path / "deep.jsonl"
    source.write_bytes(jsonl(*COURSE) + json.dumps({**COURSE[-1], "command_id": "deep-1",
                                                    "dose_ml": deep}).encode() + b"\n")
    result = coursebook("--format", "json", "import", str(source), db=store)
    assert result.returncode == 1, result
    report = json.loads(result.stdout)
    assert report["duplicates"] == len(COURSE)
    [entry] = report["rejected"]
    assert (entry["line"], entry["code"], entry["field"]) == (len(COURSE) + 1, "INVALID",
                                                              "dose_ml")


def test_importing_dev_zero_ends_with_a_clear_error(store: str) -> None:  # noqa: F811
    result = coursebook("import", "/dev/zero", db=store)
    assert result.returncode == 2, result
    assert b"line 1: no line end in 256 MiB: this is not a JSON Lines file" in result.stderr


def test_importing_a_directory_is_a_usage_error(store: str, tmp_path: Path) -> None:  # noqa: F811
    result = coursebook("import", str(tmp_path), db=store)
    assert result.returncode == 2, result
    assert b"cannot read" in result.stderr
