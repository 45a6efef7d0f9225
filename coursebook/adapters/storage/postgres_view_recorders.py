"""The views on PostgreSQL: the same contract as `views.SQLiteViewRecorder`, in the
store's own database, through the application's connections.

A page commits in one transaction with `UPDATE projection_tracking SET position = end
WHERE view = ? AND position = start`: under READ COMMITTED a concurrent worker's UPDATE
of the same row waits for ours, then re-checks its WHERE against the committed row, finds
the position moved, updates nothing, and rolls its page back. So two workers never
apply an event twice.

A page's rows go to the server in bulk: plain inserts of many rows by `COPY` (one
statement streaming every row, instead of one bound statement per row), upserts of many
rows as one `INSERT ... SELECT FROM unnest(...)` over arrays of their columns (one
statement; no two rows of one page share a key: each view writes a key once a page). A
few rows (a command's inline catch-up) go as before, by `executemany`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import tuple_row

from coursebook.adapters.storage.view_recorders import TRACKING_TABLE, ViewRecorder

__all__ = ["PostgresViewRecorder"]


def _pg(sql: str) -> str:
    """`?` placeholders to psycopg's `%s`; 64-bit integers for positions; BYTEA."""
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql.replace("?", "%s"))
    return re.sub(r"\bBLOB\b", "BYTEA", sql)


_INSERT = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \([?, ]+\)(.*)",
                     re.IGNORECASE | re.DOTALL)
BULK_ROWS = 64
"""From this many rows, a write goes by COPY or unnest; below, by `executemany`."""

_NAMED = re.compile(r"CREATE (?:UNIQUE )?(?:TABLE|INDEX) IF NOT EXISTS (\w+)", re.IGNORECASE)


class PostgresViewRecorder(ViewRecorder):
    events_position = "notification_id"

    def __init__(self, datastore: PostgresDatastore, view: str, application_name: str,
                 tables: Sequence[str], ddl: Sequence[str], *,
                 events_table: str | None = None) -> None:
        super().__init__(view, application_name, tables, ddl)
        self.datastore = datastore
        self.events_table = events_table
        self._types: dict[str, dict[str, str]] = {}

    def create_table(self) -> None:
        if self._in_place():
            return
        with self.datastore.transaction(commit=True) as c:
            # One creator at a time: CREATE TABLE IF NOT EXISTS races on the catalogue.
            c.execute("SELECT pg_advisory_xact_lock(hashtext('coursebook views'))")
            c.execute(_pg(f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} (view TEXT PRIMARY "
                          "KEY, application_name TEXT NOT NULL, position INTEGER NOT NULL)"))
            for statement in self.ddl:
                c.execute(_pg(statement))
            c.execute(_pg(f"INSERT INTO {TRACKING_TABLE} VALUES (?, ?, 0) "
                          "ON CONFLICT (view) DO NOTHING"),
                      (self.view, self.application_name))

    def _in_place(self) -> bool:
        """Whether the view's tables, indexes and tracking row all exist already. Then
        nothing is created: `CREATE INDEX IF NOT EXISTS` locks its table even when the
        index is there, and would deadlock with another process committing a page."""
        names = [_NAMED.search(statement) for statement in self.ddl]
        relations = [TRACKING_TABLE, *(m.group(1) for m in names if m is not None)]
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT " + ", ".join(f"to_regclass(%s) IS NOT NULL AS r{i}"
                                            for i in range(len(relations))),
                      relations)
            row = c.fetchone()
            if row is None or not all(row.values()):
                return False
            c.execute(_pg(f"SELECT 1 AS found FROM {TRACKING_TABLE} WHERE view=?"),
                      (self.view,))
            return c.fetchone() is not None

    def position(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(_pg(f"SELECT position FROM {TRACKING_TABLE} "
                          "WHERE view=?"), (self.view,))
            row = c.fetchone()
        return 0 if row is None else int(row["position"])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.transaction(commit=False) as c:
            rows: Any = c
            rows.row_factory = tuple_row  # rows as tuples straight away (pages are large)
            rows.execute(_pg(sql), tuple(params))
            found: list[tuple[Any, ...]] = rows.fetchall()
            return found

    def reset(self, drop: Sequence[str] = ()) -> None:
        """`ViewRecorder.reset` with `TRUNCATE` (the old rows are not deleted one by one,
        and leave nothing for the next inserts and index builds to step over). The
        tracking row is taken first, as a page's commit takes it, so that a worker
        committing a page meanwhile waits for the reset (or it for the page) instead of
        the two locking each other out."""
        with self._writing() as c:
            c.execute(_pg(f"UPDATE {TRACKING_TABLE} SET position=0 WHERE view=?"),
                      (self.view,))
            for index in drop:
                c.execute(f"DROP INDEX IF EXISTS {index}")
            c.execute(f"TRUNCATE {', '.join(self.tables)}")

    def _has_table(self, name: str) -> bool:
        return self.query("SELECT to_regclass(?)", (name,))[0][0] is not None

    def _writing(self) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=True)

    @staticmethod
    def _sql(sql: str) -> str:
        return _pg(sql)

    def _write_rows(self, cursor: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        found = _INSERT.fullmatch(sql) if len(rows) >= BULK_ROWS else None
        if found is None:
            cursor.executemany(_pg(sql), rows)
            return
        table, columns, rest = found.group(1), found.group(2), found.group(3).strip()
        if not rest:
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        names = [name.strip() for name in columns.split(",")]
        types = self._column_types(table)
        arrays = ", ".join(f"%s::{types[name]}[]" for name in names)
        # Arrays sent in binary: in text, every element would be quoted and escaped.
        cursor.execute(f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) "
                       f"{_pg(rest)}", [list(column) for column in zip(*rows, strict=True)],
                       binary=True)

    def _column_types(self, table: str) -> dict[str, str]:
        """The SQL type of each column of one of the view's tables (read once)."""
        known = self._types
        if table not in known:
            with self.datastore.transaction(commit=False) as c:
                c.execute("SELECT attname AS name, format_type(atttypid, atttypmod) AS type "
                          "FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
                          "AND NOT attisdropped", (table,))
                known[table] = {row["name"]: row["type"] for row in c.fetchall()}
        return known[table]
