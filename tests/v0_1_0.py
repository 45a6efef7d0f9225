"""The v0.1.0 fixture store (`tests/fixtures/v0_1_0/store.db`) copied into PostgreSQL.

`copy_fixture_to_postgres(target, master_key)` leaves in an empty PostgreSQL schema what
coursebook v0.1.0 would have left there had it applied the fixture's commands on
PostgreSQL instead of SQLite, so that the current code can be shown to read a PostgreSQL
store written by v0.1.0 without running v0.1.0 in the test (which would need the tag, a
second checkout and its own interpreter).

Why the copy is what v0.1.0 would have written:

- **The stored records are the database's business only as bytes.** v0.1.0 turned each
  event into `(originator_id, originator_version, topic, state)` in its mapper (the
  transcoder's JSON, personal data encrypted under the patient's data key, then the
  32-byte HMAC tag over id, version, topic and those bytes) before the recorder saw it;
  the SQLite and PostgreSQL recorders of eventsourcing 9.5 store those four values as
  they are (SQLite keeps the UUID as 32 hex digits, PostgreSQL as `uuid`: the same id).
  The snapshot goes through the same mapper into the snapshots table, the wrapped data
  keys and the master-key check row are bytes v0.1.0 computed from the master key alone,
  and the seal chain's links are HMACs over positions, ids, versions and tags. None of
  it depends on the database, so the rows are copied byte for byte. (v0.1.0 on another
  database would have drawn other random nonces and data keys; the fixture's are as
  good, and keep the expected outputs valid.)
- **The same notification ids.** The events are inserted in SQLite rowid order into an
  empty events table, with the table's own `notification_id` sequence assigning the ids
  (as the library's recorder does); the fixture's rowids are 1..497 without gaps, so the
  ids come out equal, and this is checked (a copy whose ids differed would fail here
  rather than copy a seal chain that no longer matches). The seal chain's positions and
  the views' positions are notification ids, so they are copied unchanged, and so is
  the seal chain's tracked position.
- **The same tables.** The events, snapshots, key, seal-chain and seal-tracking tables
  are made by `open_store(create=True)` of the current code: their layout is the
  library's (eventsourcing 9.5, as for v0.1.0) and coursebook's `coursebook_keys` and
  `seal_chain` statements, unchanged since v0.1.0 (its `adapters/keys.py` and
  `adapters/sealing.py` moved to `adapters/storage/`, their CREATE statements and the
  `seal_tracking` table name did not change). The key table's new check row is replaced
  by the fixture's, so only the fixture's master key opens the copy. The views (`view_*` and
  `projection_tracking`) are made from the statements v0.1.0 left in the SQLite file,
  turned into PostgreSQL the way v0.1.0's `projections/postgres_views.py` did (`INTEGER`
  -> `BIGINT`, `BLOB` -> `BYTEA`), and filled with v0.1.0's rows: the current code must
  notice that they are in v0.1.0's format (no `projection_format` row) and rebuild what
  changed, as it does on SQLite. `views=False` leaves them out (the current code then
  builds them from zero).

What differs from a store v0.1.0 wrote on PostgreSQL: nothing the engine reads. The
library's own bookkeeping row of the seal-tracking table (`__migration__`) is the one
the current library wrote when creating the table, not copied from SQLite's `tracking`
table, where it describes that table; physical order and TOAST layout are PostgreSQL's.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import psycopg
from psycopg import sql

from coursebook.adapters.storage.keys import MasterKey
from coursebook.bootstrap import open_store
from tests.pg import schema_of
from tests.stores import PG_TEST_ENV

__all__ = ["FIXTURE", "copy_fixture_to_postgres"]

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "v0_1_0"

_EVENTS, _SNAPSHOTS, _KEYS = "coursebook_events", "coursebook_snapshots", "coursebook_keys"
"""The PostgreSQL tables of the records (the library names them after the application)."""
_SEAL_NAME = "seal_chain"
"""The seal chain's application name in the tracking table (both databases)."""
_RECORD_TABLES = {"stored_events", "stored_snapshots", "coursebook_keys", "tracking",
                  "seal_chain"}
_VIEW_TABLES = {"projection_tracking", "view_calendar", "view_audit"}


def _postgres_ddl(statement: str) -> str:
    """A SQLite statement of v0.1.0's views as v0.1.0 ran it on PostgreSQL
    (`projections/postgres_views.py`, `_pg`)."""
    statement = re.sub(r"\bINTEGER\b", "BIGINT", statement)
    return re.sub(r"\bBLOB\b", "BYTEA", statement)


def _connection(target: str) -> psycopg.Connection[Any]:
    """A connection to the target's database, its schema first on the search path."""
    parts = urlsplit(target)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return psycopg.connect(url, options=f"-c search_path={schema_of(target)}",
                           connect_timeout=5)


def _rows(source: sqlite3.Connection, query: str) -> list[tuple[Any, ...]]:
    return source.execute(query).fetchall()


def copy_fixture_to_postgres(target: str, master_key: str, *,
                             store: Path = FIXTURE / "store.db", views: bool = True) -> int:
    """Creates the store at `target` (a `postgresql://...?schema=NAME` URL whose schema
    is new) and fills it with the records of `store` (never written to); returns the
    number of events copied. See the module's docstring for why this is the store v0.1.0
    would have written there."""
    key = MasterKey.from_text(master_key, "the fixture's master key")
    open_store(target, create=True, master_key=key, extra_env=PG_TEST_ENV).close()
    source = sqlite3.connect(f"file:{store}?mode=ro&immutable=1", uri=True)
    try:
        tables = {name for (name,) in _rows(source, "SELECT name FROM sqlite_master "
                                                    "WHERE type='table'")}
        if tables != _RECORD_TABLES | _VIEW_TABLES:
            raise AssertionError(f"{store}: unexpected tables {sorted(tables)}")
        with _connection(target) as target_db, target_db.cursor() as c:
            c.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(_EVENTS)))
            if (found := c.fetchone()) is None or found[0] != 0:
                raise AssertionError("the new store already holds events")
            c.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(_KEYS)))
            c.executemany(sql.SQL("INSERT INTO {} (key_id, wrapped) VALUES (%s, %s)")
                          .format(sql.Identifier(_KEYS)),
                          _rows(source, "SELECT key_id, wrapped FROM coursebook_keys "
                                        "ORDER BY key_id"))
            copied = _copy_events(source, c)
            c.executemany(sql.SQL("INSERT INTO {} (originator_id, originator_version, topic, "
                                  "state) VALUES (%s, %s, %s, %s)")
                          .format(sql.Identifier(_SNAPSHOTS)),
                          [(UUID(oid), version, topic, state) for oid, version, topic, state
                           in _rows(source, "SELECT originator_id, originator_version, "
                                            "topic, state FROM stored_snapshots")])
            c.executemany("INSERT INTO seal_chain (position, originator_id, "
                          "originator_version, course_mac, log_mac) "
                          "VALUES (%s, %s, %s, %s, %s)",
                          _rows(source, "SELECT position, originator_id, originator_version, "
                                        "course_mac, log_mac FROM seal_chain "
                                        "ORDER BY position"))
            c.executemany("INSERT INTO seal_tracking (application_name, notification_id) "
                          "VALUES (%s, %s)",
                          _rows(source, "SELECT application_name, notification_id "
                                        f"FROM tracking WHERE application_name='{_SEAL_NAME}'"))
            if views:
                _copy_views(source, c)
    finally:
        source.close()
    return copied


def _copy_events(source: sqlite3.Connection, c: psycopg.Cursor[Any]) -> int:
    """The events in recording order; the sequence gives them the rowids' ids (checked)."""
    rows = _rows(source, "SELECT rowid, originator_id, originator_version, topic, state "
                         "FROM stored_events ORDER BY rowid")
    insert = sql.SQL("INSERT INTO {} (originator_id, originator_version, topic, state) "
                     "VALUES (%s, %s, %s, %s) RETURNING notification_id"
                     ).format(sql.Identifier(_EVENTS))
    for rowid, oid, version, topic, state in rows:
        c.execute(insert, (UUID(oid), version, topic, state))
        given = c.fetchone()
        if given is None or given[0] != rowid:
            raise AssertionError(f"event {rowid} of the fixture got notification id "
                                 f"{given and given[0]} on PostgreSQL: the seal chain and "
                                 "the views would not match it")
    return len(rows)


def _copy_views(source: sqlite3.Connection, c: psycopg.Cursor[Any]) -> None:
    """v0.1.0's view tables, indexes and rows, as v0.1.0 made them on PostgreSQL."""
    for table, statement in _rows(source, "SELECT tbl_name, sql FROM sqlite_master "
                                          "WHERE sql IS NOT NULL "
                                          "ORDER BY type DESC, name"):  # tables first
        if table in _VIEW_TABLES:
            c.execute(_postgres_ddl(statement))
    for table in sorted(_VIEW_TABLES):
        columns = [row[1] for row in _rows(source, f"PRAGMA table_info({table})")]
        names = ", ".join(columns)
        c.executemany(f"INSERT INTO {table} ({names}) "
                      f"VALUES ({', '.join(['%s'] * len(columns))})",
                      _rows(source, f"SELECT {names} FROM {table}"))
