"""Hostile shapes of input that once crashed an import or a query: each is now a refusal
naming the field (or a clear error about the input), the rest of the import goes on,
memory stays bounded, and an unknown field's name is never repeated."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from coursebook.domain.commands import MAX_DEPTH
from coursebook.errors import Code, Rejected
from coursebook.service.importing import MAX_LINE, UnusableInput, numbered_lines
from tests.builders import Clinic, command, day, product, screening
from tests.logcapture import capture_logs


def nested(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


def give(command_id: str = "give-1", **changes: Any) -> dict[str, Any]:
    body = command("give_session", at=day(1), command_id=command_id, course_id="C1",
                   products=[product()], areas=["face"], dose_ml=2, anaesthetic=None)
    body.update(changes)
    return body


def jsonl(*lines: Any) -> bytes:
    return b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n"
                    for line in lines)  # json: orjson refuses to write 255+ levels


def raw_json_nested(levels: int) -> bytes:
    """A line nested `levels` deep, written by hand (no encoder nests that deep)."""
    head = b'{"command_id": "deep-raw", "command": "give_session", "dose_ml": '
    return head + b'{"a": ' * levels + b"1" + b"}" * levels + b"}"


@pytest.mark.parametrize("levels", [MAX_DEPTH, 255, 300, 900])
def test_a_line_nested_too_deep_is_invalid_naming_the_field_and_the_import_goes_on(
        clinic: Clinic, levels: int) -> None:
    clinic.ready()
    deep = give("deep-1", dose_ml=nested(levels))
    data = jsonl(give("give-0", at=day(1, 8), session_no=1), deep,
                 give("give-2", at=day(40), session_no=2))
    report = clinic.app.import_lines(data).as_dict()
    assert report["applied"] == 2, report
    [entry] = report["rejected"]
    assert (entry["line"], entry["code"], entry["field"]) == (2, "INVALID", "dose_ml")
    assert entry["command_id"] == "deep-1"
    assert clinic.course()["sessions_given"] == 2


def test_nesting_up_to_the_limit_is_judged_as_usual(clinic: Clinic) -> None:
    clinic.ready()
    report = clinic.app.import_lines(jsonl(give(dose_ml=nested(MAX_DEPTH - 1)))).as_dict()
    [entry] = report["rejected"]
    assert (entry["field"], entry["message"]) == ("dose_ml", "dose_ml: must be a number")


def test_a_line_deeper_than_the_json_reader_goes_is_invalid_too(clinic: Clinic) -> None:
    clinic.ready()
    data = jsonl(raw_json_nested(5000), give())
    report = clinic.app.import_lines(data).as_dict()
    assert report["applied"] == 1
    [entry] = report["rejected"]
    assert (entry["line"], entry["code"], entry["field"]) == (1, "INVALID", "(line)")
    assert "nested more than" in entry["message"]


def test_a_host_passing_a_deep_or_cyclic_dict_gets_invalid(clinic: Clinic) -> None:
    clinic.ready()
    before = clinic.notifications()
    cyclic = give("cyclic-1")
    cyclic["products"] = [cyclic]
    deep_list: Any = []
    for _ in range(100_000):
        deep_list = [deep_list]
    for body in (cyclic, give("deep-2", areas=deep_list)):
        with pytest.raises(Rejected) as info:
            clinic.app.execute(body)
        assert info.value.code == Code.INVALID
        assert info.value.field in ("products", "areas")
    assert clinic.notifications() == before


def test_a_line_longer_than_the_limit_is_invalid_and_the_next_line_is_read(
        clinic: Clinic) -> None:
    clinic.ready()
    long_line = orjson.dumps(give("long-1", anaesthetic="x" * (MAX_LINE + 10)))
    at_limit = b" " * (MAX_LINE - 2) + b"{}"  # exactly MAX_LINE bytes: read and judged
    data = jsonl(long_line, at_limit, give())
    for source in (data, io.BytesIO(data)):
        report = clinic.app.import_lines(source).as_dict()
        assert [(r["line"], r["code"], r["field"]) for r in report["rejected"]] == [
            (1, "INVALID", "(line)"), (2, "INVALID", "command_id")]
        assert "longer than 4 MiB" in report["rejected"][0]["message"]
    assert clinic.course()["sessions_given"] == 1


def test_a_text_file_is_still_read_as_its_lines(clinic: Clinic, tmp_path: Path) -> None:
    clinic.ready()
    source = tmp_path / "give.jsonl"
    source.write_bytes(jsonl(give()))
    with source.open(encoding="utf-8") as text:
        assert clinic.app.import_lines(text).applied == 1


def test_a_long_line_is_cut_while_reading_not_held_whole() -> None:
    stream = io.BytesIO(b"y" * (3 * MAX_LINE) + b"\n{}\n")
    lines = list(numbered_lines(stream))
    assert [number for number, _ in lines] == [1, 2]
    assert len(lines[0][1]) == MAX_LINE + 1
    assert lines[1][1] == b"{}"


def test_input_without_line_ends_stops_with_a_clear_error_after_the_lines_before_it(
        clinic: Clinic) -> None:
    clinic.ready()
    with Path("/dev/zero").open("rb") as zeros:
        head = io.BytesIO(jsonl(give()))
        stream = io.BufferedReader(_Chain(head, zeros))  # type: ignore[arg-type]
        with pytest.raises(UnusableInput, match=r"line 2: no line end in 256 MiB.*applied 1"):
            clinic.app.import_lines(stream)
    assert clinic.course()["sessions_given"] == 1


class _Chain(io.RawIOBase):
    """Two binary streams read one after the other."""

    def __init__(self, *streams: Any) -> None:
        self.streams = list(streams)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self.streams:
            data = self.streams[0].read(len(buffer))
            if data:
                buffer[:len(data)] = data
                return len(data)
            self.streams.pop(0)
        return 0


PERSONAL_NAME = "Odile_Brunet_1980"


@pytest.mark.parametrize(("body", "field"), [
    (give(**{PERSONAL_NAME: True}), "(unknown #10)"),
    (command("record_consultation", at=day(0), command_id="consult-1", course_id="C1",
             consent=True, screening={**screening(), PERSONAL_NAME: True}),
     "screening.(unknown #11)"),
    (give(products=[{**product(), PERSONAL_NAME: "x"}]), "products[0].(unknown #4)"),
    (give(dose_ml=nested(MAX_DEPTH), **{PERSONAL_NAME: nested(MAX_DEPTH)}),
     "dose_ml"),
    ({**give(), PERSONAL_NAME: nested(MAX_DEPTH)}, "(unknown #10)"),
])
def test_an_unknown_field_is_named_by_its_place_never_by_its_name(
        clinic: Clinic, body: dict[str, Any], field: str) -> None:
    clinic.ready()
    with capture_logs() as logs:
        report = clinic.app.import_lines(jsonl(body)).as_dict()
        with pytest.raises(Rejected) as info:
            clinic.app.execute({**body, "command_id": "again-1"})
    [entry] = report["rejected"]
    assert (entry["code"], entry["field"]) == ("INVALID", field)
    assert entry["message"].startswith(f"{field}: ")
    assert info.value.field == field
    everything = json.dumps([report, logs, str(info.value)])
    assert PERSONAL_NAME not in everything
    assert "odile" not in everything.lower()


def test_a_huge_version_is_past_the_last_one_not_a_crash(clinic: Clinic) -> None:
    clinic.ready()
    for version in (2**63 - 1, 2**63, 10**30):
        with pytest.raises(Rejected) as info:
            clinic.app.get_course("C1", version=version)
        assert (info.value.code, info.value.field) == (Code.NOT_FOUND, "version")
