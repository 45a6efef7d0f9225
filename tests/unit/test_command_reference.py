"""The commands section of docs/reference.md and docs/commands.schema.json are generated
from the tables `parse_command` checks against, so they cannot drift: the files must equal
the generator's output, and the schema must agree with the engine on which commands are
well-formed (the acceptance scenarios' lines, samples, and generated commands)."""

from __future__ import annotations

import copy
import inspect
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from coursebook.domain import rules
from coursebook.domain.command_reference import (
    BLOCKS,
    REFERENCE,
    SCHEMA,
    block,
    json_schema,
    main,
    schema_text,
)
from coursebook.domain.commands import (
    ABOUT,
    BETWEEN,
    BLANKS,
    COMMANDS,
    SCREENING_DOCS,
    parse_command,
    read_command_id,
)
from coursebook.domain.course import TreatmentCourse
from coursebook.errors import Code, Rejected
from tests.builders import PATIENT, product, screening
from tests.unit.test_commands import VALID

REPO = Path(__file__).resolve().parents[2]
VALIDATOR = Draft202012Validator(json_schema(),
                                 format_checker=Draft202012Validator.FORMAT_CHECKER)
AT = "2026-09-01T09:00:00+02:00"


def engine(raw: Any) -> str:
    """What the engine's input checks say of `raw`: `ok`, `between` (refused only by a
    rule between fields, which no schema states), `unknown` or `invalid`."""
    refusal: Rejected | None = None
    try:
        read_command_id(raw)
        parse_command(raw)
    except Rejected as rejected:
        refusal = rejected
    if refusal is None:
        return "ok"
    if refusal.code == Code.UNKNOWN_COMMAND:
        return "unknown"
    assert refusal.code == Code.INVALID, refusal
    if any(refusal.field == rule.field and refusal.message == f"{rule.field}: {rule.message}"
           for between in BETWEEN.values() for rule in between):
        return "between"
    return "invalid"


def assert_agree(raw: Any) -> str:
    """The schema accepts `raw` exactly when the engine's input checks do (a rule between
    fields aside); returns the engine's verdict."""
    verdict = engine(raw)
    errors = [error.message[:200] for error in VALIDATOR.iter_errors(raw)][:3]
    assert (not errors) == (verdict in ("ok", "between")), (verdict, errors, raw)
    return verdict


def command(name: str, /, **changes: Any) -> dict[str, Any]:
    raw = {"command": name, "command_id": "c-1", "at": AT, "actor": "dr-ada",
           **copy.deepcopy(VALID[name])}
    raw.update(changes)
    return raw


# -- the files are the generator's output --------------------------------------------------
@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_the_reference_holds_each_generated_block_as_generated(name: str) -> None:
    text = (REPO / REFERENCE).read_text(encoding="utf-8")
    assert block(text, name) == BLOCKS[name](), (
        f"{REFERENCE} is stale: run python -m coursebook.domain.command_reference --write")


def test_the_published_schema_is_the_generated_one() -> None:
    assert (REPO / SCHEMA).read_text(encoding="utf-8") == schema_text(), (
        f"{SCHEMA} is stale: run python -m coursebook.domain.command_reference --write")


def test_check_passes_on_the_repository() -> None:
    assert main(["--check", "--root", str(REPO)]) == 0


def test_check_finds_a_stale_block_and_write_mends_it(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    shutil.copy(REPO / REFERENCE, tmp_path / REFERENCE)
    text = (tmp_path / REFERENCE).read_text(encoding="utf-8")
    (tmp_path / REFERENCE).write_text(text.replace("[`give_session`](#give_session)", "`give`", 1),
                                      encoding="utf-8")
    assert main(["--check", "--root", str(tmp_path)]) == 1  # and the schema is missing
    assert main(["--write", "--root", str(tmp_path)]) == 0
    assert main(["--check", "--root", str(tmp_path)]) == 0
    assert (tmp_path / REFERENCE).read_text(encoding="utf-8") == text
    assert (tmp_path / SCHEMA).read_text(encoding="utf-8") == schema_text()


def test_a_reference_without_markers_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / REFERENCE).write_text("# no markers\n", encoding="utf-8")
    assert main(["--check", "--root", str(tmp_path)]) == 2


# -- the schema's shape --------------------------------------------------------------------
def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(json_schema())
    assert json_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def objects(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "oneOf" not in schema:
            yield schema
        for value in schema.values():
            yield from objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from objects(value)


def test_every_object_at_every_depth_refuses_unknown_fields() -> None:
    found = list(objects(json_schema()))
    assert len(found) >= len(COMMANDS) + 3  # the commands, patient, screening, product
    for schema in found:
        assert schema["additionalProperties"] is False, schema
        assert set(schema["required"]) <= set(schema["properties"])


def test_one_branch_per_command_told_apart_by_its_name() -> None:
    branches = json_schema()["oneOf"]
    assert [b["title"] for b in branches] == list(COMMANDS)
    for branch in branches:
        assert branch["properties"]["command"]["const"] == branch["title"]
        assert {"command", "command_id", "at", "actor"} <= set(branch["required"])


def test_the_blank_characters_are_those_python_strips() -> None:
    declared = {c for lo, hi in BLANKS for c in range(lo, hi + 1)}
    assert declared == {c for c in range(0x110000) if chr(c).isspace()}


# -- the declaration's words match what the engine does ------------------------------------
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_who_may_send_a_command_is_the_act_the_course_checks(name: str) -> None:
    act = ABOUT[name].act
    method = getattr(TreatmentCourse, name, None)
    if method is None:  # handled by the application: any actor
        assert act is None
        return
    assert act in rules.PERMISSIONS
    source = inspect.getsource(method)
    if "self._book(" in source:  # scheduling and rescheduling share their checks
        source += inspect.getsource(TreatmentCourse._book)
    assert f'"{act}"' in source


def test_each_screening_answer_names_the_code_it_puts_in_force() -> None:
    for flag, doc in SCREENING_DOCS.items():
        if flag in rules.ABSOLUTE:
            assert f"`{rules.ABSOLUTE[flag]}`" in doc
            assert "absolute" in doc
        else:
            assert f"`{rules.RELATIVE[flag]}`" in doc
            assert "relative" in doc


# -- the schema agrees with the engine -----------------------------------------------------
def scenario_lines() -> list[tuple[str, int, Any, str | None]]:
    """(scenario, line, the line's value, the code it is refused with or None when it is
    applied or a duplicate) for every imported line of the acceptance scenarios of the
    engine's current rules; they live outside the repository."""
    found: list[tuple[str, int, Any, str | None]] = []
    for base in (REPO.parent, REPO.parent.parent):
        folder = base / "shared" / "acceptance" / "scenarios"
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            scenario = json.loads(path.read_text(encoding="utf-8"))
            for step in scenario["steps"]:
                if "import" not in step or "rejected" not in step.get("expect", {}):
                    continue
                codes = {r["line"]: r["code"] for r in step["expect"]["rejected"]}
                for number, item in enumerate(step["import"], start=1):
                    found.append((path.stem, number, item, codes.get(number)))
        break
    return found


SCENARIO_LINES = scenario_lines()


def as_command(item: Any) -> Any:
    """A line as the engine reads it: objects as they are, strings parsed as JSON
    (`$t1`-style placeholders of the scenarios stand for a moment: any will do)."""
    if isinstance(item, str):
        item = json.loads(item.removeprefix("\ufeff"))
    if isinstance(item, dict):
        item = {k: AT if isinstance(v, str) and v.startswith("$t") else v
                for k, v in item.items()}
    return item


@pytest.mark.skipif(not SCENARIO_LINES, reason="the acceptance scenarios are not beside "
                                                "the repository")
def test_the_schema_accepts_every_line_the_scenarios_apply_and_refuses_malformed_ones(
        ) -> None:
    counted = {"accepted": 0, "malformed": 0, "refused later": 0}
    for scenario, number, item, code in SCENARIO_LINES:
        try:
            raw = as_command(item)
        except ValueError:  # not JSON: no schema can read it
            assert code == "INVALID", (scenario, number)
            continue
        where = (scenario, number, code)
        verdict = assert_agree(raw)
        if code is None:
            assert verdict == "ok", where
            counted["accepted"] += 1
        elif code in ("INVALID", "UNKNOWN_COMMAND") and verdict in ("invalid", "unknown"):
            counted["malformed"] += 1
        else:  # refused by a rule of the records, or between fields: well-formed
            assert verdict in ("ok", "between"), where
            assert VALIDATOR.is_valid(raw), where
            counted["refused later"] += 1
    assert counted["accepted"] > 100
    assert counted["malformed"] > 10
    assert counted["refused later"] > 10


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_schema_accepts_each_valid_command(name: str) -> None:
    assert assert_agree(command(name)) == "ok"


@pytest.mark.parametrize(("name", "changes"), [
    ("give_session", {"at": "2026-09-01T09:00:00"}),
    ("give_session", {"dose_ml": 0}),
    ("give_session", {"dose_ml": 20.5}),
    ("give_session", {"dose_ml": True}),
    ("give_session", {"products": []}),
    ("give_session", {"products": [{**product(), "batch": "x"}]}),
    ("give_session", {"products": [product(expires_on="2026-02-30")]}),
    ("give_session", {"areas": [" "]}),
    ("give_session", {"anaesthetic": ""}),
    ("give_session", {"colour": "blue"}),
    ("record_consultation", {"screening": {k: v for k, v in screening().items()
                                           if k != "diabetes"}}),
    ("record_consultation", {"screening": screening(diabetes="no")}),
    ("record_consultation", {"screening": screening(smoker=True)}),
    ("open_course", {"indication": "botox"}),
    ("open_course", {"patient": {**PATIENT, "email": "a@b"}}),
    ("open_course", {"course_id": "C\n1"}),
    ("open_course", {"course_id": "x" * 129}),
    ("report_reaction", {"severity": 6}),
    ("report_reaction", {"severity": 2.5}),
    ("adjust_interval", {"reason": "  short  "}),
    ("override_contraindication", {"justification": "too short"}),
    ("register_practitioner", {"role": "surgeon"}),
    ("register_practitioner", {"name": "a\x00b"}),
    ("erase_patient", {"command_id": "a b"}),
    ("erase_patient", {"command_id": None}),
    ("erase_patient", {"expected_version": -1}),
    ("complete_course", {"reason": "done"}),
])
def test_the_schema_refuses_what_the_engine_finds_malformed(
        name: str, changes: dict[str, Any]) -> None:
    assert assert_agree(command(name, **changes)) == "invalid"


@pytest.mark.parametrize("raw", [
    command("adjust_interval", min_days=20, target_days=10, max_days=30),
    command("schedule_session", planned_at="2026-08-31T09:00:00+02:00"),
])
def test_rules_between_fields_are_the_engines_alone(raw: dict[str, Any]) -> None:
    assert assert_agree(raw) == "between"


def test_an_unknown_command_matches_no_branch() -> None:
    assert assert_agree({**command("complete_course"), "command": "complete"}) == "unknown"


@pytest.mark.parametrize("spelling", ["2026-09-01 09:00:00+02:00", "2026-09-01T09:00+02:00",
                                      "2026-09-01T09:00:00+0200"])
def test_the_engine_reads_timestamp_spellings_the_schema_does_not(spelling: str) -> None:
    raw = command("complete_course", at=spelling)
    assert engine(raw) == "ok"
    assert not VALIDATOR.is_valid(raw)


# -- a property over generated commands ------------------------------------------------------
TIMESTAMPS = ["2026-09-01T09:00:00+02:00", "2026-09-01T07:00:00Z", "2026-09-01T09:00:00",
              "2026-09-01", "2026-13-01T00:00:00Z", "2026-09-02T09:00:00.25-05:30",
              "2026-09-01T24:00:00Z", "09:00:00Z"]
VALUES = st.one_of(
    st.none(), st.booleans(), st.sampled_from([0, 1, -1, 2.0, 2.5, 3, 5, 6, 10, 20, 21, 365,
                                               366, 1000, 1001, 10**20, 19.99, 20.0001]),
    st.sampled_from(["", " ", "x", "  x  ", "a" * 9, " " + "a" * 9 + " ", "a" * 10,
                     "a" * 20, "a" * 129, "a" * 201, "a" * 2001, "a\x00b", "a\nb", "a\tb",
                     "\u3000", "a\u3000", "\x1f", "c-1", "a b", "é", "2026-02-28",
                     "2026-02-30", "26-01-01", "physician", "continue", "cellulite",
                     "bruising", "PREGNANCY", *TIMESTAMPS]),
    st.text(max_size=12),
    st.sampled_from([[], ["x"], [""], ["a"] * 51, [product()], [{}],
                     [product(expires_on="2026-02-30")], {}, PATIENT, screening()]),
)
FIELDS = sorted({"colour", "command", "command_id", "at", "actor", "expected_version",
                 *(field for fields in COMMANDS.values() for field in fields)})
NESTED = {"screening": [*sorted(screening()), "notes", "smoker"],
          "patient": [*PATIENT, "email"], "products": ["name", "lot", "expires_on", "batch"]}


def good_values() -> dict[str, list[Any]]:
    """Values the engine accepts for each field name (in some command), boundaries
    included: replacing a field with one of them often keeps the command well-formed."""
    good: dict[str, list[Any]] = {}
    for body in [*VALID.values(), screening(notes="n"), PATIENT, product()]:
        for key, value in body.items():
            good.setdefault(key, []).append(value)
    more = {"dose_ml": [20, 0.001, 7], "severity": [1, 5], "min_days": [1, 14, 365],
            "target_days": [1, 21, 365], "max_days": [1, 28, 365],
            "session_no": [1, 1000, None], "planned_sessions": [1, 1000, 3.0],
            "expected_version": [0, 7, None], "at": TIMESTAMPS[:2],
            "planned_at": ["2026-08-31T09:00:00+02:00", "2026-09-01T07:00:00Z",
                           "2026-10-01T10:00:00.5+01:00"],
            "justification": ["   " + "j" * 20 + "   "], "reason": ["x", " y "],
            "spacing_override_reason": ["a" * 10, None], "actor": ["é", "a b"],
            "command_id": ["A-z_0.9:x", "x" * 128], "anaesthetic": [None, "Lidocaine"]}
    for key, values in more.items():
        good.setdefault(key, []).extend(values)
    return good


GOOD = good_values()


@st.composite
def commands(draw: st.DrawFn) -> dict[str, Any]:
    """A valid command with up to four of its fields (top-level or nested) removed or
    replaced (by a value the field may hold, or by anything), or unknown ones added."""
    name = draw(st.sampled_from(sorted(COMMANDS)))
    raw = command(name)
    own = sorted({*raw, *COMMANDS[name], "expected_version"})
    for _ in range(draw(st.integers(0, 4))):
        target: dict[str, Any] = raw
        keys = own if draw(st.integers(0, 3)) else FIELDS
        nested = [key for key in NESTED if isinstance(raw.get(key), dict | list)]
        if nested and draw(st.booleans()):
            key = draw(st.sampled_from(nested))
            inner = raw[key][0] if isinstance(raw[key], list) and raw[key] else raw[key]
            if not isinstance(inner, dict):
                continue
            target, keys = inner, NESTED[key]
        key = draw(st.sampled_from(keys))
        if key in target and draw(st.integers(0, 3)) == 0:
            del target[key]
        elif key in GOOD and draw(st.integers(0, 2)):
            target[key] = copy.deepcopy(draw(st.sampled_from(GOOD[key])))
        else:
            target[key] = copy.deepcopy(draw(VALUES))  # the pool's objects stay as they are
    return raw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=commands())
@example(raw=command("give_session", anaesthetic=None, session_no=None))
@example(raw=command("reschedule_session", session_no=None))
@example(raw=command("open_course", planned_sessions=3.0, expected_version=10**20))
def test_the_schema_and_the_engine_agree_on_generated_commands(raw: dict[str, Any]) -> None:
    assert_agree(raw)
