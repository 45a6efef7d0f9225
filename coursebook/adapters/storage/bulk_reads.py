"""Reads the library's recorders do one aggregate at a time, done for many at once.

`import` looks up, for each line, whether its command_id was already applied (its
receipt, an aggregate of its own). One query per batch of lines answers that for all of
them; only the lines whose receipt exists are then read one by one. `course show`
reads a course's events after a snapshot as plain rows (`select_rows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.sqlite import SQLiteAggregateRecorder

__all__ = ["StoredRow", "recorded_originators", "select_rows"]

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


class StoredRow(NamedTuple):
    """A stored event as the mapper reads it, without the library's per-row conversions
    (a `UUID` parsed from text and a frozen `StoredEvent` per row)."""

    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes | str  # str: a state rewritten as text (damage the mapper names)


def select_rows(recorder: Any, aggregate_id: UUID, *, gt: int | None, lte: int | None,
                limit: int) -> list[StoredRow] | None:
    """One aggregate's stored events after version `gt`, up to `lte`, oldest first, at
    most `limit`; None if this store has no plain SQL read (the in-memory store)."""
    if isinstance(recorder, SQLiteAggregateRecorder):
        sql = (f"SELECT originator_version, topic, state FROM {recorder.events_table_name} "
               "WHERE originator_id = ? AND originator_version > ?")
        params: list[Any] = [aggregate_id.hex, gt or 0]
        if lte is not None:
            sql += " AND originator_version <= ?"
            params.append(lte)
        sql += " ORDER BY originator_version LIMIT ?"
        params.append(limit)
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            # A state rewritten as text stays text: the mapper names it (`Tampered`).
            return [StoredRow(aggregate_id, int(r[0]), r[1],
                              r[2] if isinstance(r[2], str) else bytes(r[2]))
                    for r in c.fetchall()]
    if type(recorder).__module__ == "eventsourcing.postgres":
        from psycopg.sql import SQL, Identifier

        statement = SQL("SELECT originator_version, topic, state FROM {schema}.{table} "
                        "WHERE originator_id = %s AND originator_version > %s").format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name))
        values: list[Any] = [aggregate_id, gt or 0]
        if lte is not None:
            statement += SQL(" AND originator_version <= %s")
            values.append(lte)
        statement += SQL(" ORDER BY originator_version LIMIT %s")
        values.append(limit)
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, values)
            rows = curs.fetchall()
        return [StoredRow(aggregate_id, *_pg_row(row)) for row in rows]
    return None


def _pg_row(row: Any) -> tuple[int, str, bytes]:
    if isinstance(row, dict):
        return int(row["originator_version"]), row["topic"], bytes(row["state"])
    return int(row[0]), row[1], bytes(row[2])
