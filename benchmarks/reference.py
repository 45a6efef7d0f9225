"""The baselines: what a team would write without coursebook, each in its plain idiomatic form.

- `PlainCourses`: the `eventsourcing` library used as its documentation shows. One
  aggregate per course, one `@event` method, the library's default JSON transcoder, and
  one `repository.get` + one `save` per command (one transaction per command). No
  receipts, no rules, no patient index: it does less than coursebook per command.
- `CrudAudit`: tables updated in place plus an audit row, in plain `sqlite3` (WAL, the
  default `synchronous`, one `BEGIN IMMEDIATE` .. `COMMIT` per command) or `psycopg`.
  The audit row's primary key is the command id, so a retry is caught, as in coursebook.
- `catch_up_per_event`: the library's projection pattern, a tracking recorder written
  in one transaction per event (the view row and its tracking position together).
- `read_and_decode`: the storage's own limit: read the rows with the driver and decode
  each event body with orjson, nothing else.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import InfrastructureFactory, IntegrityError, Tracking

__all__ = ["CrudAudit", "PlainCourses", "catch_up_per_event", "read_and_decode"]


# -- plain eventsourcing ------------------------------------------------------------------
def plain_course_id(course_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, "course:" + course_id)


class PlainCourse(Aggregate):
    @staticmethod
    def create_id(course_id: str, **_: Any) -> UUID:
        """Natural key to id with uuid5, as the library's examples do."""
        return plain_course_id(course_id)

    @event("Opened")
    def __init__(self, course_id: str, patient_ref: str, indication: str,
                 at: dt.datetime) -> None:
        self.course_id = course_id
        self.patient_ref = patient_ref
        self.indication = indication
        self.status = "open"
        self.log: list[str] = []

    @event("CommandApplied")
    def apply_command(self, command: str, command_id: str, at: dt.datetime, actor: str,
                      fields: dict[str, Any]) -> None:
        self.log.append(command)
        if command in ("complete_course", "discontinue_course"):
            self.status = command.split("_")[0] + "d"


class PlainCourses(Application[UUID]):
    """One `save` per command: the library's idiomatic command path."""

    name = "plaincourses"

    def execute(self, raw: dict[str, Any]) -> str:
        at = dt.datetime.fromisoformat(raw["at"])
        if raw["command"] == "register_practitioner":
            return "skipped"
        if raw["command"] == "open_course":
            course = PlainCourse(raw["course_id"], raw["patient_ref"], raw["indication"], at)
        else:
            try:
                course = self.repository.get(plain_course_id(raw["course_id"]))
            except AggregateNotFoundError:
                return "rejected"
            fields = {k: v for k, v in raw.items()
                      if k not in ("command", "command_id", "at", "actor", "course_id")}
            course.apply_command(raw["command"], raw["command_id"], at, raw["actor"], fields)
        try:
            self.save(course)
        except IntegrityError:  # a retried open_course: the course exists
            return "rejected"
        return "applied"


# -- CRUD + audit -------------------------------------------------------------------------
CRUD_TABLES = [
    """CREATE TABLE IF NOT EXISTS courses (course_id TEXT PRIMARY KEY, patient_ref TEXT,
       indication TEXT, status TEXT, planned_sessions INTEGER, sessions_given INTEGER,
       last_session_at TEXT, scheduled_at TEXT, version INTEGER)""",
    """CREATE TABLE IF NOT EXISTS sessions (course_id TEXT, session_no INTEGER, at TEXT,
       actor TEXT, products TEXT, dose_ml REAL, PRIMARY KEY (course_id, session_no))""",
    """CREATE TABLE IF NOT EXISTS reactions (course_id TEXT, session_no INTEGER, at TEXT,
       kind TEXT, severity INTEGER, reviewed_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS audit (command_id TEXT PRIMARY KEY, command TEXT,
       course_id TEXT, actor TEXT, at TEXT, body TEXT)""",
]


class CrudAudit:
    """Tables updated in place plus an audit row, one transaction per command."""

    def __init__(self, connect: Callable[[], Any], placeholder: str = "?") -> None:
        self.conn = connect()
        self.p = placeholder
        self.sqlite = isinstance(self.conn, sqlite3.Connection)
        if self.sqlite:
            self.conn.execute("PRAGMA journal_mode=WAL")
        for statement in CRUD_TABLES:
            self._run(statement)
        if not self.sqlite:
            self.conn.commit()

    @classmethod
    def sqlite_file(cls, path: str) -> CrudAudit:
        return cls(lambda: sqlite3.connect(path, isolation_level=None))

    @classmethod
    def postgres(cls, url: str) -> CrudAudit:
        import psycopg

        return cls(lambda: psycopg.connect(url), placeholder="%s")

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.conn.execute(sql.replace("?", self.p), params)

    def close(self) -> None:
        self.conn.close()

    def execute(self, raw: dict[str, Any]) -> str:
        if self.sqlite:
            self.conn.execute("BEGIN IMMEDIATE")
        try:
            status = self._apply(raw)
        except Exception:
            self.conn.rollback()
            raise
        if status == "applied":
            self.conn.commit()
        else:
            self.conn.rollback()
        return status

    def _apply(self, raw: dict[str, Any]) -> str:
        name, course_id = raw["command"], raw.get("course_id")
        seen = self._run("SELECT body FROM audit WHERE command_id=?",
                         (raw["command_id"],)).fetchone()
        if seen is not None:
            return "duplicate"
        if name == "register_practitioner":
            pass
        elif name == "open_course":
            self._run("INSERT INTO courses VALUES (?,?,?,?,?,?,?,?,?)",
                      (course_id, raw["patient_ref"], raw["indication"], "open",
                       raw.get("planned_sessions", 4), 0, None, None, 1))
        else:
            row = self._run("SELECT status, sessions_given, version FROM courses "
                            "WHERE course_id=?", (course_id,)).fetchone()
            if row is None:
                return "rejected"
            status, given, version = row
            if name == "give_session":
                given += 1
                self._run("INSERT INTO sessions VALUES (?,?,?,?,?,?)",
                          (course_id, given, raw["at"], raw["actor"],
                           orjson.dumps(raw["products"]).decode(), raw["dose_ml"]))
                self._run("UPDATE courses SET sessions_given=?, last_session_at=?, "
                          "scheduled_at=NULL, version=? WHERE course_id=?",
                          (given, raw["at"], version + 1, course_id))
            elif name in ("schedule_session", "reschedule_session"):
                self._run("UPDATE courses SET scheduled_at=?, version=? WHERE course_id=?",
                          (raw["planned_at"], version + 1, course_id))
            elif name == "report_reaction":
                self._run("INSERT INTO reactions VALUES (?,?,?,?,?,?)",
                          (course_id, raw["session_no"], raw["at"], raw["kind"],
                           raw["severity"], None))
                self._run("UPDATE courses SET version=? WHERE course_id=?",
                          (version + 1, course_id))
            elif name == "review_reaction":
                self._run("UPDATE reactions SET reviewed_at=? WHERE course_id=? AND "
                          "session_no=?", (raw["at"], course_id, raw["session_no"]))
                self._run("UPDATE courses SET version=? WHERE course_id=?",
                          (version + 1, course_id))
            else:
                new_status = {"record_consultation": "active", "pause_course": "paused",
                              "resume_course": "active", "complete_course": "completed",
                              "discontinue_course": "discontinued"}.get(name, status)
                self._run("UPDATE courses SET status=?, version=? WHERE course_id=?",
                          (new_status, version + 1, course_id))
        self._run("INSERT INTO audit VALUES (?,?,?,?,?,?)",
                  (raw["command_id"], name, course_id, raw["actor"], raw["at"],
                   orjson.dumps(raw).decode()))
        return "applied"


# -- the library's per-event catch-up -----------------------------------------------------
def catch_up_per_event(app: Application[Any], view_env: dict[str, str],
                       page_size: int = 500, limit: int | None = None,
                       progress: Callable[[int], None] | None = None) -> int:
    """Every event of `app`'s log, decoded by its mapper, then its tracking position
    recorded by a library tracking recorder, one transaction per event (the library's
    `Projection.process_event` contract). Stops after `limit` events (the rate is per
    event). Returns the events processed."""
    factory = InfrastructureFactory.construct(env=view_env)  # type: ignore[arg-type]
    view = factory.tracking_recorder()
    name = app.name
    start = (view.max_tracking_id(name) or 0) + 1
    done = 0
    while True:
        page = app.recorder.select_notifications(start, page_size)
        for notification in page:
            domain_event = app.mapper.to_domain_event(notification)
            del domain_event
            view.insert_tracking(Tracking(name, notification.id))
            done += 1
        if progress is not None:
            progress(len(page))
        if len(page) < page_size or (limit is not None and done >= limit):
            break
        start = page[-1].id + 1
    factory.close()
    return done


# -- the raw limit ------------------------------------------------------------------------
def read_and_decode(target: str, *, postgres_table: str = "coursebook_events",
                    page_size: int = 5000) -> Iterator[int]:
    """Reads every stored event in order and decodes its body with orjson; yields the
    count of each page read. Coursebook's stored bodies end with the tagging mapper's
    HMAC tag, which is taken off first, as the views do."""
    from coursebook.adapters.storage.integrity import TaggingMapper

    untagged = TaggingMapper.untagged

    def loads(state: bytes) -> Any:
        return orjson.loads(untagged(state))

    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target) as pg:
            yield from _pages(pg.execute, loads, page_size, (
                f"SELECT notification_id, originator_id, originator_version, topic, state "
                f"FROM {postgres_table} WHERE notification_id > %s "
                f"ORDER BY notification_id LIMIT %s"))
        return
    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        yield from _pages(conn.execute, loads, page_size, (
            "SELECT rowid, originator_id, originator_version, topic, state "
            "FROM stored_events WHERE rowid > ? ORDER BY rowid LIMIT ?"))
    finally:
        conn.close()


def _pages(execute: Callable[..., Any], loads: Callable[[bytes], Any], page_size: int,
           statement: str) -> Iterator[int]:
    """Runs `statement` (after-position, limit) page by page, decoding each row's state."""
    last = 0
    while True:
        rows = execute(statement, (last, page_size)).fetchall()
        for row in rows:
            loads(row[4])
        if rows:
            last = rows[-1][0]
            yield len(rows)
        if len(rows) < page_size:
            return


# -- recall's baseline -----------------------------------------------------------------------
def scan_lots(target: str, topic: str, *,
              postgres_table: str = "coursebook_events") -> dict[str, int]:
    """What recall would cost without its view: every stored session read and decoded
    with orjson, its products' lots counted (trimmed). Returns sessions per lot."""
    from coursebook.adapters.storage.integrity import TaggingMapper

    untagged = TaggingMapper.untagged
    counts: dict[str, int] = {}

    def count(rows: Any) -> None:
        for (state,) in rows:
            body = orjson.loads(untagged(bytes(state)))
            lots = {str(p["_data_"]["lot"]).strip() for p in body["products"]}
            for lot in lots:
                counts[lot] = counts.get(lot, 0) + 1

    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target) as pg:
            count(pg.execute(f"SELECT state FROM {postgres_table} WHERE topic = %s",
                             (topic,)).fetchall())
        return counts
    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        count(conn.execute("SELECT state FROM stored_events WHERE topic = ?",
                           (topic,)).fetchall())
    finally:
        conn.close()
    return counts
