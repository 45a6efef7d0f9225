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

from coursebook.adapters.cli.importing import apply_lines
from coursebook.clock import FixedClock
from coursebook.domain.commands import COMMANDS, COMMON, PATIENT, PRODUCT, SCREENING
from coursebook.errors import Rejected
from tests.builders import Clinic
from tests.stores import START, make_app

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
        report = apply_lines(clinic.app, data)
        # A leading byte-order mark is not content: a file holding only one has no lines.
        content = data.removeprefix(b"\xef\xbb\xbf")
        assert report["applied"] + report["duplicates"] + len(report["rejected"]) == sum(
            1 for line in content.split(b"\n") if line.removesuffix(b"\r").strip())
