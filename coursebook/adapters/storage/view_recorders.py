"""Tracked materialised views: each view's writes commit together with its position.

The eventsourcing library's model: a read model is a `Projection` over a recorder that
tracks its position (its *view*), and every write to the view commits in the same
transaction as the tracking position of the last event it reflects. The view is not a
library `TrackingRecorder` (see `ViewRecorder`): only a runner moves it. So a view is always
the image of a prefix of the application log, and a crash loses nothing and counts
nothing twice: the next run reads on from the committed position.

Four choices on top of the library's model:

- **Pages.** A runner reads the notifications after the view's position in pages (1,000
  by default), lets the projection turn the whole page into row writes (kept in memory,
  written with `executemany`), and commits them with the page's last position in ONE
  transaction. One transaction per event measured about 20 times slower.
- **Compare-and-set.** The library's `insert_tracking` accepts any higher position, so
  two workers that read overlapping pages could both commit them. Here a page commits
  only if the view still stands where the page began (`UPDATE ... SET position = new
  WHERE view = ? AND position = start`, checking the row count); the loser rolls back,
  forgets its caches and reads again from the winner's position.
- **Same database as the events.** On SQLite the view tables live in the store's file
  (no table name contains "event"; they start with `view_` or `projection_`); on
  PostgreSQL in the store's database (`postgres_views.py`). A rebuild is one reset
  transaction and then ordinary catch-up from zero.
- **Rebuilds in bulk.** A rebuild's reset also drops the view's secondary indexes that
  its projection names `deferred` (they only serve queries); they are created again,
  sorted in one pass, once the catch-up reaches the head. Should the rebuild stop half
  way, `create_table` (run whenever the views are opened) creates them again: an index
  is never missing for long and never wrong. Rebuilding every view reads and decodes
  each page once for all of them (`rebuild_together`), reading the next page while the
  views apply this one; each view still commits its own page with compare-and-set.
  Views that fold the same events (calendar, compliance) fold each page once between
  them during that pass (`ViewProjection.join`).

`ViewRecorder` is the storage contract (SQLite here); `ViewProjection` turns a page of
notifications into writes; `ViewRunner` catches up, rebuilds, and reports status.
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, cast

import attrs
import orjson

from coursebook.adapters.storage.integrity import TEXT_AS_WRITTEN
from coursebook.domain.schema import record_class, upgrade
from coursebook.domain.topics import topic_aliases
from coursebook.projections.collector import collector_paused
from coursebook.projections.view_projection import Progress, Row, ViewProjection, Write

if TYPE_CHECKING:
    from eventsourcing.application import Application

__all__ = [
    "PAGE_SIZE", "TRACKING_TABLE", "Progress", "Row", "SQLiteViewRecorder",
    "ViewProjection", "ViewRecorder", "ViewRunner", "ViewStatus", "Write", "raw_decoder",
    "raw_json", "rebuild_together",
]

PAGE_SIZE = 1000
"""Notifications read and committed per transaction."""

REBUILD_PAGES = 10
"""A rebuild from zero reads and commits this many pages at a time: the calendar then
computes a touched course's entry once per 10,000 events instead of once per 1,000 (in
a log where courses interleave, most of its time), for about 30 MB of memory a page."""

TRACKING_TABLE = "projection_tracking"
"""One row per view: the id of the last notification the view reflects."""

FORMAT_TABLE = "projection_format"
"""One row per view: the format its rows were written in (no row: format 1, 0.1.0)."""





class ViewRecorder(ABC):
    """A view's tables and its tracking row, in the same database as the events.

    Not a library `TrackingRecorder`: a view tracks one upstream (the application log),
    its position moves only by compare-and-set (`commit_page`), and it fails the
    library's `TrackingRecorderTestCase` by design (a repeated position is no error
    here: it is how a losing worker finds out). Runners move it, nothing else."""

    def __init__(self, view: str, application_name: str, tables: Sequence[str],
                 ddl: Sequence[str]) -> None:
        self.view = view
        self.application_name = application_name
        self.tables = tuple(tables)
        self.ddl = tuple(ddl)

    # -- the view's contract -----------------------------------------------------------
    @abstractmethod
    def create_table(self) -> None:
        """Creates the view's tables and its tracking row (idempotent)."""

    @abstractmethod
    def position(self) -> int:
        """The id of the last notification the view reflects (0: none yet)."""

    def commit_page(self, start: int, end: int, writes: Sequence[Write]) -> bool:
        """Applies `writes` and moves the position from `start` to `end`, in one
        transaction, only if the view still stands at `start`. False: someone else
        moved it first, and nothing was written."""
        try:
            with self._writing() as c:
                c.execute(self._sql(f"UPDATE {TRACKING_TABLE} SET position=? "
                                    "WHERE view=? AND position=?"), (end, self.view, start))
                if c.rowcount != 1:
                    raise _Moved
                for sql, rows in writes:
                    if rows:
                        self._write_rows(c, sql, rows)
        except _Moved:
            return False
        return True

    def select_page(self, after: int, limit: int, topics: Sequence[str],
                    until: int | None = None) -> list[Row] | None:
        """The next stored events of `topics` after `after`, read straight from the
        events table; None when this recorder cannot see it (the runner then asks the
        application recorder)."""
        if self.events_table is None:
            return None
        position = self.events_position
        sql = (f"SELECT {position}, originator_id, originator_version, topic, state "
               f"FROM {self.events_table} WHERE {position} > ?")
        params: list[Any] = [after]
        if until is not None:
            sql += f" AND {position} <= ?"
            params.append(until)
        if topics:
            sql += f" AND topic IN ({', '.join('?' * len(topics))})"
            params.extend(topics)
        sql += f" ORDER BY {position} LIMIT ?"
        params.append(limit)
        return self.query(sql, params)

    def reset(self, drop: Sequence[str] = ()) -> None:
        """Empties the view's tables, drops the indexes named in `drop` (`create_table`
        makes them again) and sets its position to 0, in one transaction."""
        with self._writing() as c:
            for index in drop:
                c.execute(f"DROP INDEX IF EXISTS {index}")
            for table in self.tables:
                c.execute(f"DELETE FROM {table}")
            c.execute(self._sql(f"UPDATE {TRACKING_TABLE} SET position=0 WHERE view=?"),
                      (self.view,))

    def ensure_format(self, version: int) -> bool:
        """Makes sure the view's rows are in format `version`: if they were written in
        another (by an older or newer coursebook), empties the view and sets its position
        to 0 (the next catch-up rebuilds it) and records the format, in one transaction.
        True when it discarded rows that way (a view still empty has nothing to redo)."""
        with self._writing() as c:
            c.execute(f"CREATE TABLE IF NOT EXISTS {FORMAT_TABLE} "
                      "(view TEXT PRIMARY KEY, version INTEGER NOT NULL)")
            c.execute(self._sql(f"SELECT version AS version FROM {FORMAT_TABLE} WHERE view=?"),
                      (self.view,))
            row = c.fetchone()
            stored = 1 if row is None else int(row["version"] if isinstance(row, dict) else row[0])
            if stored == version and row is not None:
                return False
            discarded = False
            if stored != version:
                c.execute(self._sql(f"UPDATE {TRACKING_TABLE} SET position=0 "
                                    "WHERE view=? AND position>0"), (self.view,))
                discarded = c.rowcount > 0
                for table in self.tables:
                    c.execute(f"DELETE FROM {table}")
            c.execute(self._sql(f"INSERT INTO {FORMAT_TABLE} (view, version) VALUES (?, ?) "
                                "ON CONFLICT (view) DO UPDATE SET version = excluded.version"),
                      (self.view, version))
            return discarded

    def stored_format(self) -> tuple[int | None, int]:
        """(the format the view's rows were written in, the view's position), read
        without changing anything; (None, 0) when the view was never made here."""
        if not self._has_table(TRACKING_TABLE):
            return None, 0
        tracked = self.query(f"SELECT position FROM {TRACKING_TABLE} WHERE view=?",
                             (self.view,))
        if not tracked:
            return None, 0
        position = int(tracked[0][0])
        if self._has_table(FORMAT_TABLE):
            found = self.query(f"SELECT version FROM {FORMAT_TABLE} WHERE view=?",
                               (self.view,))
            if found:
                return int(found[0][0]), position
        return 1, position  # no record of its format: written by 0.1.0

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only statement over the view's tables (`?` placeholders)."""

    @abstractmethod
    def _has_table(self, name: str) -> bool:
        """Whether the view's database holds a table of that name (where it looks)."""

    def _execute_in_transaction(self, sql: str, params: Sequence[Any]) -> None:
        with self._writing() as c:
            c.execute(self._sql(sql), tuple(params))

    # -- what each database provides ---------------------------------------------------
    events_table: str | None = None
    """The events table the view reads pages from (None: through the application)."""

    events_position: str = "rowid"
    """The events table's column of notification ids."""

    @abstractmethod
    def _writing(self) -> AbstractContextManager[Any]:
        """A cursor in a write transaction: committed on exit, rolled back on error."""

    @staticmethod
    def _sql(sql: str) -> str:
        """A statement written for SQLite (`?` placeholders), as this database takes it."""
        return sql

    def _write_rows(self, cursor: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Runs one of a page's writes (`sql` once per row) in the page's transaction."""
        cursor.executemany(self._sql(sql), rows)

    def close(self) -> None:  # noqa: B027 (nothing to release by default)
        """Releases what the recorder holds of its own."""


class _Moved(Exception):
    """The view's position is no longer where the page began (rolled back)."""


class SQLiteViewRecorder(ViewRecorder):
    """A view in the store's SQLite file, on its own connection.

    Writers take the database's write lock up front (`BEGIN IMMEDIATE`), so the
    compare-and-set and the page's writes see and change one snapshot; readers never
    block in WAL mode. For an in-memory application the view lives in a private
    in-memory database (`db_name=":memory:"`).
    """

    def __init__(self, db_name: str, view: str, application_name: str,
                 tables: Sequence[str], ddl: Sequence[str], *,
                 events_table: str | None = None, lock_timeout: float = 10.0) -> None:
        super().__init__(view, application_name, tables, ddl)
        self.events_table = events_table
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(db_name, isolation_level=None, timeout=lock_timeout,
                                     check_same_thread=False)
        self._conn.text_factory = TEXT_AS_WRITTEN  # a state rewritten as text: a finding
        if db_name != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cursor = self._conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                self._conn.rollback()
                raise
            self._conn.commit()

    def create_table(self) -> None:
        with self._writing() as c:
            c.execute(f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} (view TEXT PRIMARY KEY, "
                      "application_name TEXT NOT NULL, position INTEGER NOT NULL)")
            for statement in self.ddl:
                c.execute(statement)
            c.execute(f"INSERT INTO {TRACKING_TABLE} VALUES (?, ?, 0) "
                      "ON CONFLICT (view) DO NOTHING", (self.view, self.application_name))

    def position(self) -> int:
        with self._lock:
            row = self._conn.execute(f"SELECT position FROM {TRACKING_TABLE} WHERE view=?",
                                     (self.view,)).fetchone()
        return 0 if row is None else int(row[0])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, tuple(params)).fetchall())

    def _has_table(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                               (name,)))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def raw_decoder(app: Application[Any]) -> Callable[[str, bytes], dict[str, Any]]:
    """A stored event (topic, state) to a plain dict, without building domain objects:
    orjson on the bytes (after the mapper's tag, cipher and compressor, when the store
    uses them), brought to the current version of its class by `domain.schema.upgrade`
    (the mapper's own step). Values of registered types stay in their stored form
    `{"_type_": ..., "_data_": ...}`."""
    mapper: Any = app.mapper
    cipher, compressor = mapper.cipher, mapper.compressor
    # A mapper that appends bytes of its own (the tagging mapper's tag) says how to
    # take them off.
    untagged: Callable[[bytes], bytes] | None = getattr(mapper, "untagged", None)
    classes: dict[str, type] = {}

    def decode(topic: str, state: bytes) -> dict[str, Any]:
        if untagged is not None:
            state = untagged(state)
        if cipher is not None:
            state = cipher.decrypt(state)
        if compressor is not None:
            state = compressor.decompress(state)
        decoded: dict[str, Any] = orjson.loads(state)
        cls = classes.get(topic)
        if cls is None:
            cls = classes[topic] = record_class(topic)
        return upgrade(cls, topic, decoded)

    return decode


def raw_json(app: Application[Any]) -> Callable[[bytes], bytes] | None:
    """Stored event state to the JSON document the transcoder wrote (the tagging mapper's
    tag taken off), or None when a cipher or compressor stands between the two."""
    mapper: Any = app.mapper
    if mapper.cipher is not None or mapper.compressor is not None:
        return None
    untagged: Callable[[bytes], bytes] | None = getattr(mapper, "untagged", None)
    return untagged if untagged is not None else bytes


@attrs.frozen
class ViewStatus:
    name: str
    position: int
    head: int
    pending: int
    last_event: int = 0
    """The position of the log's last event of the kinds the view follows (what
    `position` reaches when the view is up to date; `head` may be past it)."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "position": self.position, "head": self.head,
                "last_event": self.last_event, "pending": self.pending,
                "up_to_date": self.pending == 0 and self.position <= self.head}


class ViewRunner:
    """Catches one view up with the application log, page by page, exactly once."""

    def __init__(self, app: Application[Any], projection: ViewProjection, *,
                 page_size: int = PAGE_SIZE) -> None:
        self.app = app
        self.projection = projection
        projection.runner = self
        self.view: ViewRecorder = cast("ViewRecorder", projection.view)
        self.page_size = page_size
        self._built_on: int | None = None  # the position the projection's caches reflect
        self._topic_set = frozenset(projection.topics)
        self._aliases: dict[tuple[str, ...], dict[str, str]] = {}
        self.conflicts = 0

    @property
    def name(self) -> str:
        return self.projection.name

    def catch_up(self, *, until: int | None = None, progress: Progress | None = None,
                 stop: threading.Event | None = None) -> int:
        """Applies every notification after the view's position (up to `until`), in
        pages; returns how many notifications of the view's topics it applied. The cyclic
        collector stays paused until it returns (`collector.py`): resumed after every
        page, it walked all the folded state kept in memory each time."""
        with collector_paused():
            return self._catch_up(until, progress, stop, self.page_size)

    @property
    def rebuild_page_size(self) -> int:
        return self.page_size * REBUILD_PAGES

    def _catch_up(self, until: int | None, progress: Progress | None,
                  stop: threading.Event | None, page_size: int) -> int:
        processed = 0
        head = (self.app.recorder.max_notification_id() or 0) if progress else 0
        while stop is None or not stop.is_set():
            start = self.view.position()
            if until is not None and start >= until:
                break
            if start != self._built_on:
                self.projection.forget()
            notifications = self._select_topics(start, self.projection.topics, until,
                                                page_size)
            if not notifications:
                self._built_on = start
                break
            end = notifications[-1][0]
            writes = self.projection.page(notifications)
            if not self.view.commit_page(start, end, writes):
                self.conflicts += 1
                self._built_on = None  # another worker moved the view: read it again
                continue
            self._built_on = end
            processed += len(notifications)
            if progress is not None:
                progress(end, max(head, end))
            if len(notifications) < page_size:
                break
        if progress is not None and head:
            progress(head, head)  # the log's tail may hold no event of the view's topics
        return processed

    def _names(self, topics: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """Every topic stored records of these topics' classes may carry (their old
        names too, `domain.topics`), and each old name to the current one."""
        key = tuple(topics)
        aliases = self._aliases.get(key)
        if aliases is None:
            aliases = self._aliases[key] = topic_aliases(topics)
        return [*topics, *aliases], aliases

    def _select_topics(self, start: int, topics: Sequence[str], until: int | None,
                       limit: int) -> list[Row]:
        """The next stored events of `topics`' classes, stored under any of their names,
        each handed over under its class's current topic (what projections compare)."""
        names, aliases = self._names(topics)
        rows = self.view.select_page(start, limit, names, until)
        if rows is None:
            rows = [(n.id, n.originator_id, n.originator_version, n.topic, n.state)
                    for n in self.app.recorder.select_notifications(
                        start + 1, limit, stop=until, topics=names)]
        # Every row's tag checked before a view is built from it (`Tampered` otherwise).
        check_rows = getattr(self.app.mapper, "check_rows", None)
        check = getattr(self.app.mapper, "check_row", None)
        if check_rows is not None:
            check_rows(rows)
        elif check is not None:
            for r in rows:
                check(r[1], r[2], r[3], r[4], r[0])
        if aliases:
            rows = [(r[0], r[1], r[2], aliases.get(r[3], r[3]), r[4]) for r in rows]
        return rows

    def rebuild(self, *, progress: Progress | None = None) -> int:
        """Empties the view and applies the whole log again, from zero."""
        self.reset()
        with collector_paused():
            processed = self._catch_up(None, progress, None, self.rebuild_page_size)
        self.view.create_table()  # the deferred indexes, in one sorted pass
        return processed

    def reset(self) -> None:
        """Empties the view (dropping its deferred indexes) and forgets its caches."""
        self.view.reset(drop=self.projection.deferred)
        self._built_on = None
        self.projection.forget()

    def commit(self, start: int, rows: Sequence[Row],
               bodies: Sequence[dict[str, Any]] | None = None) -> int | None:
        """Applies one page read by someone else (`rebuild_together`): the rows after
        the view's position `start`, of any topics (those not the view's are skipped;
        the position moves to the last of the view's own, as `catch_up` moves it).
        Returns how many it applied; None when the view no longer stands at `start`
        (nothing written)."""
        if start != self._built_on:
            self.projection.forget()
        topics = self._topic_set
        keep = [i for i, row in enumerate(rows) if row[3] in topics]
        if not keep:
            self._built_on = start
            return 0
        mine = [rows[i] for i in keep]
        writes = self.projection.page(
            mine, None if bodies is None else [bodies[i] for i in keep])
        end = mine[-1][0]
        if not self.view.commit_page(start, end, writes):
            self.conflicts += 1
            self._built_on = None
            return None
        self._built_on = end
        return len(keep)

    def status(self) -> ViewStatus:
        position = self.view.position()
        head = self.app.recorder.max_notification_id() or 0
        pending = 0
        start = position + 1
        last_event = position
        names = self._names(self.projection.topics)[0]
        while True:
            page = self.app.recorder.select_notifications(start, 10_000, topics=names)
            pending += len(page)
            if page:
                last_event = page[-1].id
            if len(page) < 10_000:
                break
            start = page[-1].id + 1
        return ViewStatus(self.name, position, head, pending, last_event)


def rebuild_together(runners: Sequence[ViewRunner], *,
                     progress: Progress | None = None) -> int:
    """Rebuilds several views of one application from zero, reading and decoding each
    page of the log once for all of them; returns the events applied (summed over the
    views, as separate rebuilds would). A view another worker moves meanwhile leaves the
    shared pass and finishes with its own catch-up."""
    if len(runners) < 2:
        return sum(runner.rebuild(progress=progress) for runner in runners)
    app = runners[0].app
    topics = sorted({topic for runner in runners for topic in runner.projection.topics})
    head = (app.recorder.max_notification_id() or 0) if progress else 0
    for runner in runners:
        runner.reset()
    projections = [runner.projection for runner in runners]
    for i, projection in enumerate(projections):
        projection.join(projections[:i])  # e.g. the compliance view reuses calendar folds
    try:
        with collector_paused():
            together, processed = _rebuild_pages(runners, topics, progress, head)
    finally:
        for projection in projections:
            projection.leave()
    for runner in runners:
        if runner not in together:  # moved by another worker: on its own from here
            processed[runner] += runner.catch_up()
        runner.view.create_table()
    if progress is not None and head:
        progress(head, head)
    return sum(processed.values())


def _rebuild_pages(runners: Sequence[ViewRunner], topics: Sequence[str],
                   progress: Progress | None,
                   head: int) -> tuple[list[ViewRunner], dict[ViewRunner, int]]:
    """`rebuild_together`'s pass: the views still in it, and what each applied."""
    first = runners[0]
    decode, page_size = first.projection.decode, first.rebuild_page_size
    together, processed, position = list(runners), dict.fromkeys(runners, 0), 0
    at = dict.fromkeys(runners, 0)  # each view's own position
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="coursebook-read") as reader:
        # The next page is read (and its tags checked) while this one is applied: the
        # read waits on the database, the views on the processor.
        ahead = reader.submit(first._select_topics, position, topics, None, page_size)
        while together:
            rows = ahead.result()
            if not rows:
                break
            if len(rows) == page_size:
                ahead = reader.submit(first._select_topics, rows[-1][0], topics, None,
                                      page_size)
            position = _apply_page(together, processed, at, rows,
                                   [decode(row[3], row[4]) for row in rows])
            if progress is not None:
                progress(position, max(head, position))
            if len(rows) < page_size:
                break
    return together, processed


def _apply_page(together: list[ViewRunner], processed: dict[ViewRunner, int],
                at: dict[ViewRunner, int], rows: Sequence[Row],
                bodies: Sequence[dict[str, Any]]) -> int:
    """One page of `_rebuild_pages` applied to each view still in the shared pass;
    returns the page's last position."""
    for runner in list(together):
        applied = runner.commit(at[runner], rows, bodies)
        if applied is None:
            together.remove(runner)
        else:
            processed[runner] += applied
            at[runner] = runner._built_on or 0
    return int(rows[-1][0])
