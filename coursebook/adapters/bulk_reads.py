"""Reads the library's recorders do one aggregate at a time, done for many at once.

`import` looks up, for each line, whether its command_id was already applied (its
receipt, an aggregate of its own). One query per batch of lines answers that for all of
them; only the lines whose receipt exists are then read one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.sqlite import SQLiteAggregateRecorder

__all__ = ["recorded_originators"]

_CHUNK = 500
"""Ids per query (SQLite's default limit on bound parameters is far above this)."""


def recorded_originators(recorder: Any, ids: Sequence[UUID]) -> set[UUID] | None:
    """Which of `ids` have at least one stored event; None if this store cannot say in
    bulk (the in-memory store: its per-aggregate reads cost nothing)."""
    if not ids:
        return set()
    if isinstance(recorder, SQLiteAggregateRecorder):
        return _sqlite(recorder, ids)
    if type(recorder).__module__ == "eventsourcing.postgres":
        return _postgres(recorder, ids)
    return None


def _sqlite(recorder: SQLiteAggregateRecorder, ids: Sequence[UUID]) -> set[UUID]:
    found: set[UUID] = set()
    with recorder.datastore.transaction(commit=False) as c:
        for start in range(0, len(ids), _CHUNK):
            chunk = [i.hex for i in ids[start:start + _CHUNK]]
            c.execute(f"SELECT DISTINCT originator_id FROM {recorder.events_table_name} "
                      f"WHERE originator_id IN ({', '.join('?' * len(chunk))})", chunk)
            found.update(UUID(row[0]) for row in c.fetchall())
    return found


def _postgres(recorder: Any, ids: Sequence[UUID]) -> set[UUID]:
    from psycopg.sql import SQL, Identifier

    statement = SQL("SELECT DISTINCT originator_id FROM {schema}.{table} "
                    "WHERE originator_id = ANY(%s)").format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name))
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, (list(ids),))
        return {row["originator_id"] if isinstance(row, dict) else row[0]
                for row in curs.fetchall()}
