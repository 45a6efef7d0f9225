"""Property: importing a file decides every line exactly as `execute` decides the same
commands one by one, on every store.

For any sequence of commands (the replay property's random clinic days: valid and
invalid mixed, ids re-sent with the same or another body), a store fed the sequence one
`execute` at a time and a store fed it as one JSON Lines import (in batches of any size,
so that courses, patients and receipts are decided against what earlier lines of the same
batch left) give the same report, line by line, and hold the same events, receipts,
remembered refusals, courses, audit trail and calendar.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coursebook.adapters.storage.keys import MasterKey
from coursebook.clock import FixedClock
from coursebook.errors import Rejected
from coursebook.service.application import Coursebook
from tests.application.test_replay_property import COURSES, opening_steps, steps
from tests.integration.ledger import read_ledger
from tests.stores import START, STORE_KINDS, make_app, params, release

EXAMPLES = {"memory": 25, "sqlite": 8, "postgres": 4}
"""Fewer examples where each store is a file or a server schema."""


def executed(app: Coursebook, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """The report an import would give, built from `execute` one command at a time."""
    report: dict[str, Any] = {"applied": 0, "duplicates": 0, "rejected": []}
    for number, body in enumerate(bodies, start=1):
        try:
            outcome = app.execute(body)
        except Rejected as refused:
            report["rejected"].append({"line": number, "command_id": body.get("command_id"),
                                       "code": str(refused.code), "field": refused.field,
                                       "message": refused.message})
        else:
            report["applied" if outcome.status == "applied" else "duplicates"] += 1
    return report


def held(app: Coursebook) -> dict[str, Any]:
    """What the store answers, positions aside (PostgreSQL's may skip)."""
    ledger = read_ledger(app)
    ledger.check()
    courses = {}
    for course_id in COURSES:
        try:
            courses[course_id] = app.get_course(course_id)
        except Rejected as refused:
            courses[course_id] = str(refused.code)
    return {"events": ledger.digest(), "refusals": ledger.refusals, "courses": courses,
            "audit": [{k: v for k, v in row.items() if k != "position"}
                      for row in app.audit()],
            "calendar": app.calendar(), "verify": app.verify()["ok"]}


def check(kind: str, sequence: list[tuple[int, dict[str, Any]]], batch: int) -> None:
    bodies = [body for _, body in opening_steps() + sequence]
    data = b"".join(orjson.dumps(body) + b"\n" for body in bodies)
    key = MasterKey.ephemeral()  # one key: keyed receipt digests compare equal
    with tempfile.TemporaryDirectory(prefix="coursebook-import-") as tmp:
        stores = [Path(tmp) / "one-by-one", Path(tmp) / "imported"]
        for path in stores:
            path.mkdir()
        one = make_app(kind, stores[0], FixedClock(START), catalogue="default@2",
                       master_key=key)
        bulk = make_app(kind, stores[1], FixedClock(START), catalogue="default@2",
                        master_key=key)
        try:
            expected = executed(one, bodies)
            assert bulk.import_lines(data, batch=batch).as_dict() == expected
            assert held(bulk) == held(one)
        finally:
            one.close()
            bulk.close()
            for path in stores:
                release(kind, path)


@pytest.mark.parametrize("kind", params(STORE_KINDS))
def test_an_import_decides_each_line_as_execute_one_by_one(kind: str) -> None:
    @settings(max_examples=EXAMPLES[kind], deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(sequence=steps(), batch=st.sampled_from([1, 2, 3, 7, 500]))
    def imports(sequence: list[tuple[int, dict[str, Any]]], batch: int) -> None:
        check(kind, sequence, batch)

    imports()
