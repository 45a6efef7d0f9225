"""A one-shot call on PostgreSQL (`open_store(pool=False)`, what the command line opens)
holds one plain connection to the server, not a pool; a transaction begun while another
is open still gets a connection of its own, so it commits or rolls back on its own, as
with the pool; and what is written through it is what a pooled host reads."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock
from tests import pg
from tests.builders import Clinic, day
from tests.stores import START, make_app, release, target

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL store with the clinic's staff and one course."""
    app = make_app("postgres", tmp_path, FixedClock(START))
    clinic = Clinic(app)
    clinic.open("C1")
    app.close()
    yield target("postgres", tmp_path)
    release("postgres", tmp_path)


def server_connections(application_name: str) -> int:
    row = pg._session.admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
        (application_name,)).fetchone()
    return int(row[0])


@pytest.mark.parametrize(("pool", "at_least", "at_most"), [(False, 1, 1), (True, 2, 9)])
def test_a_one_shot_call_holds_one_connection_and_a_host_its_pool(
        store: str, monkeypatch: pytest.MonkeyPatch, pool: bool, at_least: int,
        at_most: int) -> None:
    name = f"cb-test-{secrets.token_hex(4)}"
    monkeypatch.setenv("PGAPPNAME", name)  # libpq names every connection made from now
    app = open_store(store, clock=FixedClock(START), pool=pool)
    try:
        Clinic(app, staff=False).consult("C1", at=day(0))
        assert app.get_course("C1")["status"] == "active"
        assert at_least <= server_connections(name) <= at_most
    finally:
        app.close()
    assert all_gone(name)


def all_gone(application_name: str) -> bool:
    """Whether the server has let every connection of that name go (a backend leaves
    `pg_stat_activity` a moment after its client hangs up)."""
    for _ in range(100):
        if server_connections(application_name) == 0:
            return True
        time.sleep(0.05)
    return False


def test_a_transaction_begun_inside_another_commits_on_its_own(store: str) -> None:
    app = open_store(store, clock=FixedClock(START), pool=False)
    datastore: Any = app.recorder.datastore  # type: ignore[attr-defined]
    try:
        with datastore.transaction(commit=True) as c:
            c.execute("CREATE TABLE scratch (n int)")
        with datastore.transaction(commit=False) as outer:
            outer.execute("INSERT INTO scratch VALUES (1)")
            with datastore.transaction(commit=True) as inner:
                inner.execute("INSERT INTO scratch VALUES (2)")
        with datastore.transaction(commit=False) as c:
            c.execute("SELECT n FROM scratch")
            assert [row["n"] for row in c.fetchall()] == [2]
    finally:
        app.close()


def test_what_a_one_shot_call_writes_a_pooled_host_reads(store: str) -> None:
    one_shot = open_store(store, clock=FixedClock(START), pool=False)
    try:
        Clinic(one_shot, staff=False).consult("C1", at=day(0))
    finally:
        one_shot.close()
    host = open_store(store, clock=FixedClock(START))
    try:
        course = host.get_course("C1")
        assert course["version"] == 2
    finally:
        host.close()
