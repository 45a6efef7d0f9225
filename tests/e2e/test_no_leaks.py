"""No personal value from the acceptance scenarios ever reaches a log line, an error message
or the store's files in clear (CONTRACT section 7).

Every command of every scenario (imports, queries, compliance, calendar, audit, verify) is
run through the command line in-process, with its log written to a file. The scenarios
live outside the repository (`../shared/acceptance/scenarios`); without them the test
skips.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from coursebook.adapters.entrypoints.cli import cli


def scenario_dir() -> Path | None:
    repo = Path(__file__).resolve().parents[2]
    for base in (repo.parent, repo.parent.parent):
        candidate = base / "shared" / "acceptance" / "scenarios"
        if candidate.is_dir():
            return candidate
    return None


SCENARIOS = scenario_dir()
FILES = sorted(SCENARIOS.glob("*.json")) if SCENARIOS else []
PERSONAL_FIELDS = {"name", "birth_date", "notes", "allergies", "medications"}


def personal_values(item: Any, public: set[str]) -> Iterator[str]:
    """Personal strings of one command; everything else goes into `public`."""
    if not isinstance(item, dict):
        return
    for key, value in item.items():
        personal = (key == "patient" and item.get("command") == "open_course") or \
            key in ("notes", "allergies", "medications")
        if key == "screening" and isinstance(value, dict):
            yield from (v for k, v in _strings(value) if k in PERSONAL_FIELDS)
            continue
        for _, text in _strings({key: value}):
            (yield text) if personal else public.add(text.casefold())


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, k)


def secrets_of(scenario: dict[str, Any]) -> set[str]:
    """The scenario's personal values that say something on their own: not a word that is
    also a product, an area or a reason somewhere else (an allergy to "lidocaine" and the
    anaesthetic "Lidocaine HCl" share the word, and the anaesthetic is not personal)."""
    public: set[str] = set()
    found: set[str] = set()
    for step in scenario["steps"]:
        for item in step.get("import", []):
            found.update(personal_values(item, public))
    return {s for s in found if len(s) >= 4
            and not any(s.casefold() in p for p in public)}


def args_of(step: dict[str, Any], times: dict[str, str]) -> list[str] | None:
    if "run" in step:
        args = step["run"]
    elif "findings" in step:
        args = ["compliance", *step["findings"]]
    else:
        return None
    return [times.get(a[1:], a) if isinstance(a, str) and a.startswith("$") else str(a)
            for a in args]


@pytest.mark.skipif(SCENARIOS is None, reason="the acceptance scenarios (../shared) are "
                                              "not beside this checkout")
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_no_personal_value_in_logs_messages_or_store(path: Path, tmp_path: Path) -> None:
    scenario = json.loads(path.read_text(encoding="utf-8"))
    secrets = secrets_of(scenario)
    store, log = tmp_path / "store.db", tmp_path / "log.jsonl"
    runner = CliRunner()
    said: list[str] = []
    times: dict[str, str] = {}

    def invoke(*args: str) -> Any:
        result = runner.invoke(cli, ["--db", str(store), "--format", "json",
                                     "--log-file", str(log), *args])
        assert result.exit_code in (0, 1, 2, 3), (args, result.exception)
        said.append(result.stderr)
        return result

    invoke("init", "--timezone", scenario.get("timezone", "UTC"),
           "--catalogue", scenario.get("catalogue", "default@2"))
    for number, step in enumerate(scenario["steps"]):
        if "remember_time" in step:
            times[step["remember_time"]] = dt.datetime.now(dt.UTC).isoformat()
        if "import" in step:
            lines = [item if isinstance(item, str) else json.dumps(item)
                     for item in step["import"]]
            source = tmp_path / f"step{number}.jsonl"
            source.write_text("\n".join(lines) + "\n", encoding="utf-8")
            report = json.loads(invoke("import", str(source)).stdout)
            said.extend(r["message"] for r in report["rejected"])
        args = args_of(step, times)
        if args is not None:
            invoke(*args)
    invoke("verify")

    logged = log.read_text(encoding="utf-8")
    assert logged.count("\n") > 0
    for text in [logged, *said]:
        assert [s for s in secrets if s in text] == []
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("store.db*"))
    assert [s for s in secrets if s.encode() in on_disk] == []
