"""An erasure is reported done only when no copy of the wrapped key is left in the
store's files; otherwise it is pending, listed, and completed at the next opportunity.

Each test reproduces a gap first: a reader holding an older snapshot (SQLite), a
REPEATABLE READ snapshot as `pg_dump` holds (PostgreSQL), a lock held on the key table
(PostgreSQL, which must not block the erasure, nor other patients' reads, for good).
The files are scanned for the wrapped key's bytes as in `test_privacy.py`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock
from coursebook.domain.values import ERASED
from coursebook.service.application import Coursebook
from tests import pg
from tests.application.test_privacy import (
    KEEP_PATIENT,
    SECRETS,
    encodings,
    leaks,
    pg_table_bytes,
    treat_secret_patient,
)
from tests.builders import Clinic, day


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def sqlite_app(target: Path, clock: FixedClock) -> Iterator[Coursebook]:
    app = open_store(str(target), create=True, clock=clock)
    app.initialise("Europe/Paris")
    yield app
    app.close()


def erase(clinic: Clinic, ref: str = "P-SECRET") -> None:
    clinic.run("erase_patient", at=day(6), actor="dpo", patient_ref=ref,
               reason="GDPR Art. 17 request")


def pending_refs(app: Coursebook, **kwargs: Any) -> list[str | None]:
    return [p["patient_ref"] for p in app.key_status(**kwargs)["pending_erasures"]]


def eventually_complete(app: Coursebook, attempts: int = 100) -> None:
    """Completes the pending erasures. On a PostgreSQL server shared with other work, a
    transaction elsewhere as old as the erasure holds the cleanup back for a while (the
    erasure is then rightly pending): try again until it has ended."""
    for _ in range(attempts):
        if not app.key_status(complete=True)["pending_erasures"]:
            return
        time.sleep(0.1)
    pytest.fail(f"still pending: {app.key_status()['pending_erasures']}")


@pytest.fixture
def reader(target: Path) -> Iterator[sqlite3.Connection]:
    """Another process's connection, inside a read transaction (an older snapshot)."""
    conn = sqlite3.connect(target, isolation_level=None)
    yield conn
    conn.close()


def hold_snapshot(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM stored_events").fetchone()


def test_sqlite_erasure_with_a_reader_in_an_older_snapshot_is_pending_not_done(
        sqlite_app: Coursebook, target: Path, reader: sqlite3.Connection) -> None:
    clinic = Clinic(sqlite_app)
    treat_secret_patient(clinic)
    wrapped = sqlite_app.keyring.wrapped_key("P-SECRET")
    assert wrapped is not None
    hold_snapshot(reader)
    erase(clinic)

    # The key is gone from the table, but not yet from the files: not reported done.
    assert sqlite_app.keyring.wrapped_key("P-SECRET") is None
    assert leaks(target, [wrapped]) != []
    assert pending_refs(sqlite_app) == ["P-SECRET"]
    assert pending_refs(sqlite_app, complete=True) == ["P-SECRET"]  # still reading
    found = sqlite_app.verify()
    assert found["ok"]
    assert [p["patient_ref"] for p in found["pending_erasures"]] == ["P-SECRET"]
    assert "reading an older state" in found["pending_erasures"][0]["reason"]
    # Its data reads as erased already, everywhere.
    assert clinic.course("C1")["patient"] == ERASED

    reader.execute("COMMIT")
    assert pending_refs(sqlite_app, complete=True) == []
    assert leaks(target, [wrapped, *encodings(SECRETS)]) == []
    assert "pending_erasures" not in sqlite_app.verify()


def test_sqlite_the_next_write_completes_a_pending_erasure(
        sqlite_app: Coursebook, target: Path, reader: sqlite3.Connection) -> None:
    clinic = Clinic(sqlite_app)
    treat_secret_patient(clinic)
    wrapped = sqlite_app.keyring.wrapped_key("P-SECRET")
    assert wrapped is not None
    hold_snapshot(reader)
    erase(clinic)
    reader.execute("COMMIT")
    assert leaks(target, [wrapped]) != []  # nobody has tried again yet

    clinic.open("K2", patient_ref="P-OTHER", patient=KEEP_PATIENT, at=day(7))
    assert leaks(target, [wrapped]) == []
    assert pending_refs(sqlite_app) == []


def test_sqlite_the_next_process_to_open_the_store_completes_a_pending_erasure(
        sqlite_app: Coursebook, target: Path, reader: sqlite3.Connection,
        clock: FixedClock) -> None:
    clinic = Clinic(sqlite_app)
    treat_secret_patient(clinic)
    wrapped = sqlite_app.keyring.wrapped_key("P-SECRET")
    assert wrapped is not None
    hold_snapshot(reader)
    erase(clinic)
    sqlite_app.close()
    reader.execute("COMMIT")
    assert leaks(target, [wrapped]) != []

    again = open_store(str(target), clock=clock)
    try:
        assert leaks(target, [wrapped]) == []
        assert again.key_status() == {"keys": 1, "pending_erasures": []}
    finally:
        again.close()


def test_sqlite_an_erasure_without_readers_is_done_at_once(
        sqlite_app: Coursebook, target: Path) -> None:
    clinic = Clinic(sqlite_app)
    treat_secret_patient(clinic)
    wrapped = sqlite_app.keyring.wrapped_key("P-SECRET")
    assert wrapped is not None
    erase(clinic)
    assert pending_refs(sqlite_app) == []
    assert leaks(target, [wrapped]) == []


# -- PostgreSQL ------------------------------------------------------------------------

@pytest.fixture
def pg_app(clock: FixedClock, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Coursebook, str]]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pg.fresh_database("erasure") as pg_target:
        app = open_store(pg_target, create=True, clock=clock)
        try:
            app.initialise("Europe/Paris")
            yield app, pg_target
        finally:
            app.close()


@pytest.mark.postgres
def test_postgresql_erasure_under_a_repeatable_read_snapshot_is_pending_not_done(
        pg_app: tuple[Coursebook, str]) -> None:
    app, pg_target = pg_app
    clinic = Clinic(app)
    treat_secret_patient(clinic)
    wrapped = app.keyring.wrapped_key("P-SECRET")
    assert wrapped is not None
    with psycopg.connect(pg_target) as dump:  # as pg_dump holds it
        dump.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        dump.execute("SELECT count(*) FROM coursebook_keys").fetchone()
        erase(clinic)
        assert app.keyring.wrapped_key("P-SECRET") is None
        assert wrapped in pg_table_bytes(pg_target)
        assert pending_refs(app) == ["P-SECRET"]
        assert pending_refs(app, complete=True) == ["P-SECRET"]
        assert "snapshot older than the erasure" in \
            app.verify()["pending_erasures"][0]["reason"]
        # The snapshot still reads the row: this is why the erasure is not done.
        assert dump.execute("SELECT count(*) FROM coursebook_keys").fetchone()[0] == 3
        dump.rollback()
    eventually_complete(app)
    assert wrapped not in pg_table_bytes(pg_target)
    assert "pending_erasures" not in app.verify()


@pytest.mark.postgres
def test_postgresql_a_lock_on_the_key_table_neither_hangs_the_erasure_nor_other_reads(
        pg_app: tuple[Coursebook, str], clock: FixedClock) -> None:
    app, pg_target = pg_app
    clinic = Clinic(app)
    treat_secret_patient(clinic)
    wrapped = app.keyring.wrapped_key("P-SECRET")
    assert wrapped is not None
    with psycopg.connect(pg_target) as holder:
        holder.execute("LOCK TABLE coursebook_keys IN ACCESS SHARE MODE")
        erase(clinic)  # returns, pending
        assert pending_refs(app) == ["P-SECRET"]
        # Once no older transaction runs on the (shared) server, it is the lock alone
        # that holds the erasure back: `VACUUM FULL` gives up waiting for it.
        for _ in range(300):
            reason = app.key_status(complete=True)["pending_erasures"][0]["reason"]
            if "could not be rewritten" in reason:
                break
            time.sleep(0.1)
        assert "could not be rewritten" in reason
        # Another process reads another patient's course meanwhile.
        other = open_store(pg_target, clock=clock)
        try:
            assert other.get_course("K1")["patient"] == KEEP_PATIENT
        finally:
            other.close()
        holder.rollback()
    clinic.open("K2", patient_ref="P-OTHER", patient=KEEP_PATIENT, at=day(7))  # next write
    eventually_complete(app)
    assert wrapped not in pg_table_bytes(pg_target)


@pytest.mark.postgres
def test_postgresql_an_erasure_reported_done_left_no_copy(
        pg_app: tuple[Coursebook, str]) -> None:
    app, pg_target = pg_app
    clinic = Clinic(app)
    treat_secret_patient(clinic)
    wrapped = app.keyring.wrapped_key("P-SECRET")
    assert wrapped is not None
    erase(clinic)
    if not pending_refs(app):  # done at once: then truly done
        assert wrapped not in pg_table_bytes(pg_target)
    eventually_complete(app)
    assert wrapped not in pg_table_bytes(pg_target)
