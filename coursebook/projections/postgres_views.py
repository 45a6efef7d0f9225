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
from typing import Any

from eventsourcing.postgres import PostgresDatastore

from coursebook.projections.views import TRACKING_TABLE, Row, ViewRecorder, Write

__all__ = ["PostgresViewRecorder"]


def _pg(sql: str) -> str:
    """`?` placeholders to psycopg's `%s`; 64-bit integers for positions; BYTEA."""
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql.replace("?", "%s"))
    return re.sub(r"\bBLOB\b", "BYTEA", sql)


class _Moved(Exception):
    """The view's position is no longer where the page began (rolled back)."""


class PostgresViewRecorder(ViewRecorder):
    def __init__(self, datastore: PostgresDatastore, view: str, application_name: str,
                 tables: Sequence[str], ddl: Sequence[str], *,
                 events_table: str | None = None) -> None:
        super().__init__(view, application_name, tables, ddl)
        self.datastore = datastore
        self.events_table = events_table

    def create_table(self) -> None:
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

    def position(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(_pg(f"SELECT position FROM {TRACKING_TABLE} "
                          "WHERE view=?"), (self.view,))
            row = c.fetchone()
        return 0 if row is None else int(row["position"])

    def commit_page(self, start: int, end: int, writes: Sequence[Write]) -> bool:
        try:
            with self.datastore.transaction(commit=True) as c:
                c.execute(_pg(f"UPDATE {TRACKING_TABLE} SET position=? "
                              "WHERE view=? AND position=?"), (end, self.view, start))
                if c.rowcount != 1:
                    raise _Moved
                for sql, rows in writes:
                    if rows:
                        c.executemany(_pg(sql), rows)
        except _Moved:
            return False
        return True

    def select_page(self, after: int, limit: int, topics: Sequence[str],
                    until: int | None = None) -> list[Row] | None:
        if self.events_table is None:
            return None
        sql = (f"SELECT notification_id, originator_id, originator_version, topic, state "
               f"FROM {self.events_table} WHERE notification_id > %s")
        params: list[Any] = [after]
        if until is not None:
            sql += " AND notification_id <= %s"
            params.append(until)
        if topics:
            sql += " AND topic = ANY(%s)"
            params.append(list(topics))
        sql += " ORDER BY notification_id LIMIT %s"
        params.append(limit)
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return [(r["notification_id"], r["originator_id"], r["originator_version"],
                     r["topic"], bytes(r["state"])) for r in c.fetchall()]

    def reset(self, drop: Sequence[str] = ()) -> None:
        with self.datastore.transaction(commit=True) as c:
            for index in drop:
                c.execute(f"DROP INDEX IF EXISTS {index}")
            for table in self.tables:
                c.execute(f"DELETE FROM {table}")
            c.execute(_pg(f"UPDATE {TRACKING_TABLE} SET position=0 "
                          "WHERE view=?"), (self.view,))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(_pg(sql), tuple(params))
            return [tuple(row.values()) for row in c.fetchall()]

    def _execute_in_transaction(self, sql: str, params: Sequence[Any]) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(_pg(sql), tuple(params))
