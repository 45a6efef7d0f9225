"""What a host that writes only through `Coursebook` is promised (docs/embedding.md):

- right after each write (`execute`, a command method, `import_lines`), before any query,
  the seal chain has sealed every recorded event and every view is up to date; with
  `views="worker"` the writes are still sealed, but the views wait for a worker (here
  `catch_up_views()`);
- the store then answers `verify`, `calendar` and `audit` (and `course show`) exactly
  as the command line does on the same store.

On each persistent store kind (SQLite file, PostgreSQL schema).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coursebook import Coursebook, FixedClock, ImportReport, open_store
from tests.builders import command, day, product, screening
from tests.stores import PERSISTENT_KINDS, PG_TEST_ENV, make_app, params, release, target


@pytest.fixture(params=params(PERSISTENT_KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def host(kind: str, tmp_path: Path, clock: FixedClock) -> Iterator[Coursebook]:
    """The host's application on a new store (its views kept current inline)."""
    app = make_app(kind, tmp_path, clock)
    yield app
    app.close()
    release(kind, tmp_path)


def cli(store: str, *args: str) -> Any:
    """`coursebook --db STORE --format json ARGS` in a process of its own: its JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSEBOOK_")}
    result = subprocess.run([sys.executable, "-m", "coursebook", "--db", store,
                             "--format", "json", *args],
                            capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, (args, result.returncode, result.stderr)
    return json.loads(result.stdout)


def head(app: Coursebook) -> int:
    return app.recorder.max_notification_id() or 0


def assert_sealed(app: Coursebook) -> None:
    """Every recorded event is in the seal chain (read without catching anything up)."""
    assert app.seal_chain.table.tracked() == head(app) > 0


CAUGHT_UP = {"calendar": 0, "audit": 0, "recall": 0, "compliance": 0}
"""Events pending per view once every view is current."""


def views_behind(app: Coursebook) -> dict[str, int]:
    """Events each view has not applied yet (`views_status` reads, it catches nothing up)."""
    status = app.views_status()
    assert all(view["head"] == head(app) for view in status), status
    return {view["name"]: view["pending"] for view in status}


def register(n: int) -> dict[str, Any]:
    return {"command_id": f"reg-{n}", "at": day(-30), "actor": "admin",
            "practitioner_id": f"dr-{n}", "name": f"Doctor {n}", "role": "physician",
            "license_number": f"LIC-{n}", "license_expires_on": "2030-12-31"}


def opening(course_id: str, patient_ref: str) -> dict[str, Any]:
    return command("open_course", at=day(0, 8), actor="admin", course_id=course_id,
                   patient_ref=patient_ref, indication="skin_rejuvenation",
                   command_id=f"open-{course_id}",
                   patient={"name": "Jeanne Martin", "birth_date": "1984-03-12"})


def course_lines(course_id: str) -> list[str]:
    """A consultation, a first session and the next one planned, as JSON Lines."""
    return [json.dumps(c) for c in [
        command("record_consultation", at=day(0), actor="dr-1", course_id=course_id,
                consent=True, screening=screening()),
        command("give_session", at=day(1), actor="dr-1", course_id=course_id,
                products=[product()], areas=["face"], dose_ml=2.0, anaesthetic=None),
        command("schedule_session", at=day(1, 11), actor="dr-1", course_id=course_id,
                planned_at=day(16, 10), practitioner_id="dr-1"),
    ]]


def test_each_write_is_sealed_and_projected_before_it_returns(host: Coursebook) -> None:
    writes = [
        lambda: host.register_practitioner(**register(1)),          # a command method
        lambda: host.execute(opening("C1", "P1")),                  # execute(dict)
        lambda: host.import_lines(course_lines("C1")),              # JSON Lines, as text
        lambda: host.import_lines(("\n".join([json.dumps(opening("C2", "P2")),  # bytes
                                              *course_lines("C2")]) + "\n").encode()),
        lambda: host.adjust_interval(command_id="adj-1", at=day(2), actor="dr-1",
                                     course_id="C2", min_days=10, target_days=20,
                                     max_days=40, reason="slower pace", expected_version=4),
    ]
    for write in writes:
        before = head(host)
        result = write()
        assert head(host) > before, result
        if isinstance(result, ImportReport):
            assert (result.applied > 0, result.rejected) == (True, []), result
        assert_sealed(host)
        assert views_behind(host) == CAUGHT_UP
        assert all(view["up_to_date"] for view in host.views_status())
    assert [e["course_id"] for e in host.calendar()] == ["C1", "C2"]


def test_with_views_worker_writes_are_sealed_and_the_views_wait_for_the_worker(
        kind: str, host: Coursebook, tmp_path: Path, clock: FixedClock) -> None:
    host.register_practitioner(**register(1))
    extra = PG_TEST_ENV if kind == "postgres" else {}
    writer = open_store(target(kind, tmp_path), clock=clock, extra_env=extra,
                        views="worker")
    try:
        assert writer.views == "worker"
        writer.execute(opening("C1", "P1"))
        assert_sealed(writer)
        pending = views_behind(writer)
        assert min(pending.values()) > 0, pending
        report = writer.import_lines(course_lines("C1"))
        assert (report.applied, report.rejected) == (3, [])
        assert_sealed(writer)
        assert views_behind(writer)["audit"] > pending["audit"]
        assert views_behind(host) == views_behind(writer)  # the views are the store's

        assert writer.catch_up_views() > 0  # what a worker (`projections run`) does
        assert views_behind(writer) == CAUGHT_UP
        assert views_behind(host) == CAUGHT_UP
        assert [e["course_id"] for e in host.calendar()] == ["C1"]
    finally:
        writer.close()


def test_the_host_and_the_command_line_give_the_same_answers(
        kind: str, host: Coursebook, tmp_path: Path) -> None:
    host.register_practitioner(**register(1))
    host.execute(opening("C1", "P1"))
    host.execute(opening("C2", "P2"))
    report = host.import_lines([*course_lines("C1"), *course_lines("C2")])
    assert (report.applied, report.rejected) == (6, [])
    host.pause_course(command_id="pause-C2", at=day(2), actor="dr-1", course_id="C2",
                      reason="patient travelling")
    assert_sealed(host)
    store = target(kind, tmp_path)

    verified = host.verify()
    sealed = verified.pop("head")
    assert (verified["ok"], sealed.position) == (True, head(host)), verified
    assert cli(store, "verify") == verified
    assert cli(store, "calendar") == host.calendar() != []
    assert cli(store, "calendar", "--from", day(16)[:10], "--to", day(16)[:10]) \
        == host.calendar(day(16)[:10], day(16)[:10]) != []
    assert cli(store, "audit") == host.audit()
    assert cli(store, "audit", "--course", "C2") == host.audit("C2") != []
    assert cli(store, "course", "show", "C1") == host.get_course("C1")
