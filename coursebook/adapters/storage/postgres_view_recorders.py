"""The views on PostgreSQL: the same contract as `views.SQLiteViewRecorder`, in the
store's own database, through the application's psycopg pool.

A page commits in one transaction with `UPDATE projection_tracking SET position = end
WHERE view = ? AND position = start`: under READ COMMITTED a concurrent worker's UPDATE
of the same row waits for ours, then re-checks its WHERE against the committed row, finds
the position moved, updates nothing, and rolls its page back. So two workers never
apply an event twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from eventsourcing.postgres import PostgresDatastore

from coursebook.adapters.storage.view_recorders import TRACKING_TABLE, ViewRecorder

__all__ = ["PostgresViewRecorder"]


def _pg(sql: str) -> str:
    """`?` placeholders to psycopg's `%s`; 64-bit integers for positions; BYTEA."""
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql.replace("?", "%s"))
    return re.sub(r"\bBLOB\b", "BYTEA", sql)


_NAMED = re.compile(r"CREATE (?:UNIQUE )?(?:TABLE|INDEX) IF NOT EXISTS (\w+)", re.IGNORECASE)


class PostgresViewRecorder(ViewRecorder):
    events_position = "notification_id"

    def __init__(self, datastore: PostgresDatastore, view: str, application_name: str,
                 tables: Sequence[str], ddl: Sequence[str], *,
                 events_table: str | None = None) -> None:
        super().__init__(view, application_name, tables, ddl)
        self.datastore = datastore
        self.events_table = events_table

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
            c.execute(_pg(sql), tuple(params))
            return [tuple(row.values()) for row in c.fetchall()]

    def _has_table(self, name: str) -> bool:
        return self.query("SELECT to_regclass(?)", (name,))[0][0] is not None

    def _writing(self) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=True)

    @staticmethod
    def _sql(sql: str) -> str:
        return _pg(sql)
