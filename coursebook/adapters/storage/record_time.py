"""Record time that no later write can move under an answer: the known horizon.

An event's record time is the library's `timestamp` it carries (what `--known-at K`
selects on: recorded at or before K). A writer decides a command with the clock's
time, but commits a moment later; a reader answering about K in between would miss an
event stamped <= K that commits after its answer, and a later answer for the same K
would differ. Two rules close that window:

- before answering about a moment K already past, a reader raises the store's *known
  horizon* to K, under the lock writers commit under (SQLite: the database's write lock,
  `BEGIN IMMEDIATE`; PostgreSQL: the horizon row, which writers share-lock after taking
  the events table's lock);
- a writer reads the horizon under that lock, in the transaction that inserts its
  events, and an event stamped at or before it is stamped again just after it
  (re-encoded and re-tagged) before it is inserted.

So an event stamped <= K either committed before the reader raised the horizon (the
reader sees it) or was recorded after K. The horizon only grows; stamps move only
forward, never past an event's own later ones (version order is kept).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import (
    EventStore,
    InterfaceError,
    Notification,
    OperationalError,
    PersistenceError,
    Recording,
    StoredEvent,
)
from eventsourcing.utils import retry

__all__ = ["HORIZON_TABLE", "HorizonTable", "KnownHorizon", "StampingEventStore",
           "horizon_for", "restamped"]

HORIZON_TABLE = "known_horizon"
TICK = dt.timedelta(microseconds=1)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LOCK_SECONDS = 10
"""How long raising the horizon waits for writers in flight (as SQLite's lock timeout)."""

Restamp = Callable[[dt.datetime], Sequence[StoredEvent]]
"""Given the horizon read under the write lock, the stored events to insert."""


def _micros(moment: dt.datetime) -> int:
    return (moment.astimezone(dt.UTC) - EPOCH) // TICK


def _moment(micros: int) -> dt.datetime:
    return EPOCH + micros * TICK


class HorizonTable(Protocol):
    def read(self) -> dt.datetime: ...

    def raise_to(self, moment: dt.datetime) -> None: ...

    def insert(self, recorder: Any, stored_events: Sequence[StoredEvent], restamp: Restamp,
               **kwargs: Any) -> Sequence[int] | None: ...


class KnownHorizon:
    """The reader's side: `settle(K, now)` before answering about K."""

    def __init__(self, table: HorizonTable) -> None:
        self.table = table
        self._settled: dt.datetime | None = None  # the horizon is at least this (it only grows)
        self._lock = threading.Lock()

    def settle(self, known_at: dt.datetime, now: dt.datetime) -> bool:
        """Makes the answer about `known_at` final when that moment is past: no write
        stamped at or before it is in flight or can commit later. False (nothing done)
        when it is not past yet: writes may still be recorded at or before it."""
        if known_at >= now:
            return False
        with self._lock:
            settled = self._settled
        if settled is not None and known_at <= settled:
            return True
        current = self.table.read()
        if current < known_at:
            self.table.raise_to(known_at)
            current = known_at
        with self._lock:
            if self._settled is None or self._settled < current:
                self._settled = current
        return True


def restamped(horizon: dt.datetime, domain_events: Sequence[Any],
              stored_events: Sequence[StoredEvent], mapper: Any) -> Sequence[StoredEvent]:
    """`stored_events`, except that an event stamped at or before `horizon` is stamped
    just after it (the domain event itself too) and encoded again."""
    after = horizon + TICK
    out: list[StoredEvent] | None = None
    for index, event in enumerate(domain_events):
        if event.timestamp <= horizon:
            object.__setattr__(event, "timestamp", after)
            if out is None:
                out = list(stored_events)
            out[index] = mapper.to_stored_event(event)
    return stored_events if out is None else out


class StampingEventStore(EventStore[UUID]):
    """The library's event store, inserting through the horizon table (when there is
    one) so that the stamps are settled under the write lock."""

    def __init__(self, mapper: Any, recorder: Any, horizon: HorizonTable | None = None,
                 ) -> None:
        super().__init__(mapper, recorder)
        self.horizon = horizon

    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> list[Recording[UUID]]:
        if self.horizon is None or not domain_events:
            return super().put(domain_events, **kwargs)
        mapper = self.mapper
        encoded = [mapper.to_stored_event(event) for event in domain_events]
        final: list[Sequence[StoredEvent]] = [encoded]

        def restamp(horizon: dt.datetime) -> Sequence[StoredEvent]:
            # From the last encoding: an insert retried after a failure may have moved
            # some stamps already.
            final[0] = restamped(horizon, domain_events, final[0], mapper)
            return final[0]

        ids = self.horizon.insert(self.recorder, encoded, restamp, **kwargs)
        if not ids:
            return []
        return [Recording(d, Notification(originator_id=s.originator_id,
                                          originator_version=s.originator_version,
                                          topic=s.topic, state=s.state, id=n))
                for d, s, n in zip(domain_events, final[0], ids, strict=True)]


class MemoryHorizonTable:
    """For a store kept in memory (one process): a lock around stamping and inserting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._horizon = EPOCH

    def read(self) -> dt.datetime:
        with self._lock:
            return self._horizon

    def raise_to(self, moment: dt.datetime) -> None:
        with self._lock:
            self._horizon = max(self._horizon, moment.astimezone(dt.UTC))

    def insert(self, recorder: Any, stored_events: Sequence[StoredEvent], restamp: Restamp,
               **kwargs: Any) -> Sequence[int] | None:
        with self._lock:
            result: Sequence[int] | None = recorder.insert_events(restamp(self._horizon),
                                                                   **kwargs)
            return result


class SQLiteHorizonTable:
    """The horizon in the SQLite file; every transaction that touches it begins
    `IMMEDIATE` (the write lock first, waiting up to the store's lock timeout), so that
    what it reads cannot change before it commits."""

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                      (HORIZON_TABLE,))
            exists = c.fetchone() is not None
        if not exists:  # a new store, or one made before the horizon existed
            with self._immediate() as c:
                c.execute(f"CREATE TABLE IF NOT EXISTS {HORIZON_TABLE} ("
                          "id INTEGER PRIMARY KEY CHECK (id = 1), horizon INTEGER NOT NULL)")
                c.execute(f"INSERT OR IGNORE INTO {HORIZON_TABLE} VALUES (1, 0)")

    @contextlib.contextmanager
    def _immediate(self) -> Iterator[Any]:
        from eventsourcing.sqlite import SQLiteTransaction

        class Immediate(SQLiteTransaction):
            def __enter__(self) -> Any:
                cursor = self.connection.cursor()
                try:
                    cursor.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as error:
                    raise OperationalError(error) from error
                return cursor

        with self.datastore.get_connection(commit=True) as conn, \
                Immediate(conn, commit=True) as cursor, cursor:
            yield cursor

    @staticmethod
    def _horizon(c: Any) -> dt.datetime:
        c.execute(f"SELECT horizon FROM {HORIZON_TABLE} WHERE id = 1")
        row = c.fetchone()
        return _moment(int(row[0]) if row is not None else 0)

    def read(self) -> dt.datetime:
        with self.datastore.transaction(commit=False) as c:
            return self._horizon(c)

    def raise_to(self, moment: dt.datetime) -> None:
        with self._immediate() as c:
            c.execute(f"INSERT INTO {HORIZON_TABLE} (id, horizon) VALUES (1, ?) "
                      "ON CONFLICT (id) DO UPDATE SET horizon = max(horizon, excluded.horizon)",
                      (_micros(moment),))

    def insert(self, recorder: Any, stored_events: Sequence[StoredEvent], restamp: Restamp,
               **kwargs: Any) -> Sequence[int] | None:
        with self._immediate() as c:
            events = restamp(self._horizon(c))
            result: Sequence[int] | None = recorder._insert_events(c, events, **kwargs)
            return result


class PostgresHorizonTable:
    """The horizon in the store's schema. A writer takes the events table's lock (as the
    library does, for notification order), then share-locks the horizon row; a reader
    raising it takes the row's update lock, so each waits for the other to commit."""

    def __init__(self, datastore: Any) -> None:
        from psycopg import sql

        self.datastore = datastore
        self.table = sql.SQL("{}.{}").format(sql.Identifier(datastore.schema),
                                             sql.Identifier(HORIZON_TABLE))
        if not self._exists():
            try:
                with self.datastore.transaction(commit=True) as curs:
                    curs.execute(sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (id smallint PRIMARY KEY "
                        "CHECK (id = 1), horizon bigint NOT NULL)").format(self.table))
                    curs.execute(sql.SQL("INSERT INTO {} VALUES (1, 0) ON CONFLICT (id) "
                                         "DO NOTHING").format(self.table))
            except PersistenceError:
                if not self._exists():  # not another process creating it at the same time
                    raise

    def _exists(self) -> bool:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute("SELECT to_regclass(%s) AS found",
                         (f'"{self.datastore.schema}".{HORIZON_TABLE}',))
            row = curs.fetchone()
        return row is not None and row["found"] is not None

    def _horizon(self, curs: Any, *, share: bool) -> dt.datetime:
        from psycopg import sql

        curs.execute(sql.SQL("SELECT horizon FROM {} WHERE id = 1{}").format(
            self.table, sql.SQL(" FOR SHARE" if share else "")))
        row = curs.fetchone()
        return _moment(int(row["horizon"]) if row is not None else 0)

    def read(self) -> dt.datetime:
        with self.datastore.transaction(commit=False) as curs:
            return self._horizon(curs, share=False)

    def raise_to(self, moment: dt.datetime) -> None:
        from psycopg import sql

        with self.datastore.transaction(commit=True) as curs:
            curs.execute(sql.SQL(f"SET LOCAL lock_timeout = '{LOCK_SECONDS}s'"))
            curs.execute(sql.SQL(
                "INSERT INTO {0} AS h (id, horizon) VALUES (1, %s) ON CONFLICT (id) "
                "DO UPDATE SET horizon = GREATEST(h.horizon, EXCLUDED.horizon)").format(
                    self.table), (_micros(moment),))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert(self, recorder: Any, stored_events: Sequence[StoredEvent], restamp: Restamp,
               **kwargs: Any) -> Sequence[int] | None:
        """The library's `PostgresApplicationRecorder.insert_events` (lock, notify,
        insert, ids), with the horizon read between the lock and the insert."""
        from eventsourcing.postgres import PostgresAggregateRecorder

        if not stored_events:
            return []
        with self.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor() as curs:
            recorder._lock_table(curs)  # the library's lock: notification ids in order
            events = restamp(self._horizon(curs, share=True))
            recorder._notify_channel(curs)
            PostgresAggregateRecorder._insert_stored_events(recorder, curs, events, **kwargs)
            ids: Sequence[int] | None = recorder._fetch_ids_after_insert_events(
                curs, events, **kwargs)
            return ids


def horizon_for(recorder: Any) -> HorizonTable:
    """The horizon table living in the same database as the application's recorder
    (made there on first use: stores made before it existed get it on opening)."""
    datastore = getattr(recorder, "datastore", None)
    module = type(recorder).__module__
    if datastore is not None and module == "eventsourcing.sqlite":
        return SQLiteHorizonTable(datastore)
    if datastore is not None and module == "eventsourcing.postgres":
        return PostgresHorizonTable(datastore)
    return MemoryHorizonTable()
