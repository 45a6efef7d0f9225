"""Property: whatever a line holds, the engine answers with an outcome or a `Rejected`,
never another exception (which the command line would turn into exit 70)."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from coursebook.clock import FixedClock
from coursebook.domain.commands import COMMANDS, COMMON, PATIENT, PRODUCT, SCREENING
from coursebook.errors import Code, Rejected
from tests.builders import Clinic, command, product, refusals_added, screening
from tests.stores import START, make_app

FUZZED = {"lines": 0, "refused": 0}
"""How many fuzzed lines the tests below tried (printed by the last test, run with -s)."""

FIELD_NAMES = sorted({*COMMON, *PATIENT, *PRODUCT, *SCREENING,
                      *(field for schema in COMMANDS.values() for field in schema)})
SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
           | st.sampled_from(["2026-09-01T09:00:00+02:00", "2026-09-01", "C1", "P1",
                              "dr-ada", "physician", "skin_rejuvenation", "PREGNANCY",
                              "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
                              "2026-09-01T09:00:00"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(FIELD_NAMES) | st.text(max_size=8), inner, max_size=6), max_leaves=20)


@st.composite
def command_like(draw: st.DrawFn) -> dict[str, Any]:
    """An object shaped like a command, with any of its fields replaced by anything."""
    body: dict[str, Any] = {
        "command": draw(st.sampled_from(sorted(COMMANDS))),
        "command_id": draw(st.sampled_from(["f-1", "f-2", "f-3"])),
        "at": draw(st.sampled_from(["2026-09-02T09:00:00+02:00", "2026-10-30T09:00:00Z"])),
        "actor": draw(st.sampled_from(["dr-ada", "aes-cy", "admin"])),
        "course_id": "C1", "patient_ref": "P1", "session_no": 1,
    }
    for key in draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=6)):
        body[key] = draw(JSON)
    return body


def fresh_clinic(tmp: str) -> Clinic:
    clinic = Clinic(make_app("memory", Path(tmp), FixedClock(START)))
    clinic.ready()
    clinic.give()
    return clinic


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(command_like(), min_size=1, max_size=5))
def test_any_command_shaped_object_is_applied_or_rejected(
        bodies: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clinic = fresh_clinic(tmp)
        for body in bodies:
            FUZZED["lines"] += 1
            with contextlib.suppress(Rejected):
                clinic.app.execute(body)
            clinic.course("C1")
            clinic.app.get_history("C1")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(JSON.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=40),
                      max_size=5))
@example(lines=[b"\xef\xbb\xbf"])  # a file holding only a byte-order mark: no lines
def test_any_bytes_are_reported_line_by_line(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clinic = fresh_clinic(tmp)
        data = b"\n".join(line.replace(b"\n", b" ") for line in lines)
        FUZZED["lines"] += len(lines)
        report = clinic.app.import_lines(data).as_dict()
        # A leading byte-order mark is not content: a file holding only one has no lines.
        content = data.removeprefix(b"\xef\xbb\xbf")
        assert report["applied"] + report["duplicates"] + len(report["rejected"]) == sum(
            1 for line in content.split(b"\n") if line.removesuffix(b"\r").strip())


VALID_LINES = [
    command("open_course", at="2026-09-03T08:00:00+02:00", actor="admin", course_id="C2",
            patient_ref="P2", indication="cellulite",
            patient={"name": "Fuzz Person", "birth_date": "1990-01-01"}),
    command("record_consultation", at="2026-09-03T09:00:00+02:00", course_id="C1",
            consent=True, screening=screening(notes="fuzz note", allergies=["latex"])),
    command("give_session", at="2026-10-01T09:00:00+02:00", course_id="C1",
            products=[product()], areas=["face"], dose_ml=1.5, anaesthetic=None),
    command("report_reaction", at="2026-09-03T09:00:00+02:00", course_id="C1",
            session_no=1, kind="redness", severity=2, notes="fuzz"),
    command("erase_patient", at="2026-09-04T09:00:00+02:00", actor="dpo",
            patient_ref="P1", reason="request"),
]


@st.composite
def mutated_line(draw: st.DrawFn) -> bytes:
    """A valid command line with a few bytes replaced, inserted or deleted."""
    data = bytearray(json.dumps(draw(st.sampled_from(VALID_LINES))).encode())
    for _ in range(draw(st.integers(0, 4))):  # 0: the valid line itself
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if how == "replace":
            data[at] = byte
        elif how == "insert":
            data.insert(at, byte)
        elif len(data) > 1:
            del data[at]
    return bytes(data).replace(b"\n", b" ")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(mutated_line() | JSON.map(lambda v: json.dumps(v).encode())
                      | command_like().map(lambda v: json.dumps(v).encode()),
                      min_size=1, max_size=6))
def test_a_refused_line_leaves_the_store_unchanged(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clinic = fresh_clinic(tmp)
        for line in lines:
            FUZZED["lines"] += 1
            before = clinic.notifications()
            report = clinic.app.import_lines(line).as_dict()
            after = clinic.notifications()
            if report["rejected"]:
                FUZZED["refused"] += 1
                # Nothing but the refusal, remembered under a readable command_id.
                assert len(refusals_added(before, after)) <= 1
                assert report["rejected"][0]["code"] in {c.value for c in Code}
            elif report["applied"]:
                assert len(after) > len(before)
            else:
                assert len(after) == len(before)  # a duplicate, or a blank line


def test_fuzzed_lines_were_counted() -> None:
    print(f"\nfuzzed lines tried: {FUZZED}")  # the figure the project reports
