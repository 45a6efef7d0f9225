"""The read models of an application: which views exist, and how to keep them current.

- `runners(app)`: a `ViewRunner` per view (calendar, audit), on the same store kind as
  the events (SQLite file, PostgreSQL database; a private in-memory SQLite database for
  an in-memory application). Made once per application and closed with it.
- `catch_up(app)`: applies what the views have not seen yet (exactly once, in pages).
  In the embedded default the command line calls it after every `import` and before
  every query, so no worker is needed (docs/projections.md says why both).
- `rebuild(app, name=None, progress=None) -> int`: empties the views (or one) and applies
  the whole log again; returns how many events were processed.
- `calendar(app, start, end)`, `audit(app, course_id)` and `recall(app, lot, ...)`: the
  documents of docs/reference.md, read from the views after a catch-up.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Any, cast

from eventsourcing.popo import POPOApplicationRecorder

from coursebook.adapters.storage.time_travel import fold_course
from coursebook.adapters.storage.view_recorders import (
    PAGE_SIZE,
    SQLiteViewRecorder,
    ViewRecorder,
    ViewRunner,
    ViewStatus,
    raw_decoder,
    raw_json,
    rebuild_together,
)
from coursebook.domain.ids import course_uuid
from coursebook.errors import Code, Rejected
from coursebook.logs import get_logger
from coursebook.projections.audit import AuditProjection
from coursebook.projections.calendar import CalendarProjection
from coursebook.projections.compliance_view import ComplianceProjection
from coursebook.projections.course_view import iso
from coursebook.projections.recall import RecallProjection, lot_key
from coursebook.projections.view_projection import Progress, ViewProjection
from coursebook.service.wiring import Wiring

__all__ = ["PROJECTIONS", "audit", "calendar", "catch_up", "formats", "rebuild", "recall",
           "runners", "status", "verify_views"]

PROJECTIONS: dict[str, type[ViewProjection]] = {
    "calendar": CalendarProjection,
    "audit": AuditProjection,
    "recall": RecallProjection,
    "compliance": ComplianceProjection,
}
"""Every view, by the name `coursebook projections rebuild NAME` takes."""

_ATTRIBUTE = "_coursebook_views"
log = get_logger("coursebook.projections")


def _recorder(app: Wiring, cls: type[ViewProjection]) -> ViewRecorder:
    datastore: Any = getattr(app.recorder, "datastore", None)
    if datastore is not None and type(datastore).__name__ == "PostgresDatastore":
        from coursebook.adapters.storage.postgres_view_recorders import PostgresViewRecorder

        return PostgresViewRecorder(datastore, cls.name, app.name, cls.tables, cls.ddl,
                                    events_table=cast(Any, app.recorder).events_table_name)
    if isinstance(app.recorder, POPOApplicationRecorder) or datastore is None:
        return SQLiteViewRecorder(":memory:", cls.name, app.name, cls.tables, cls.ddl)
    events_table = getattr(app.recorder, "events_table_name", None)
    return SQLiteViewRecorder(datastore.pool.db_name, cls.name, app.name, cls.tables,
                              cls.ddl, events_table=events_table)


def _page_size() -> int:
    """Notifications per page: `COURSEBOOK_VIEW_PAGE_SIZE`, else `views.PAGE_SIZE`."""
    value = os.environ.get("COURSEBOOK_VIEW_PAGE_SIZE", "")
    return int(value) if value.isdigit() and int(value) > 0 else PAGE_SIZE


def runners(app: Wiring) -> dict[str, ViewRunner]:
    """The application's views, created (tables included) on first use."""
    made: dict[str, ViewRunner] | None = getattr(app, _ATTRIBUTE, None)
    if made is None:
        made = {}
        for name, cls in PROJECTIONS.items():
            view = _recorder(app, cls)
            view.create_table()
            if view.ensure_format(cls.format_version):
                log.info("view_format_changed", view=name, format=cls.format_version)
            projection = cls(view, app, decode=raw_decoder(app), stored_json=raw_json(app))
            made[name] = ViewRunner(app, projection, page_size=_page_size())
            app.on_close(view.close)
        setattr(app, _ATTRIBUTE, made)
    return made


def _selected(app: Wiring, name: str | None) -> list[ViewRunner]:
    every = runners(app)
    if name is None:
        return list(every.values())
    if name not in every:
        raise Rejected(Code.NOT_FOUND, f"no view named {name!r} (views: "
                       f"{', '.join(every)})", "name")
    return [every[name]]


def catch_up(app: Wiring, name: str | None = None) -> int:
    """Applies to the views (or one) every event they have not seen; returns how many."""
    return sum(runner.catch_up() for runner in _selected(app, name))


def rebuild(app: Wiring, name: str | None = None, progress: Progress | None = None) -> int:
    """Rebuilds the views (or the one named) from zero; returns the number of events
    processed (summed over the views rebuilt). `progress(position, head)` is called
    after each committed page. Several views are rebuilt in one pass over the log."""
    return rebuild_together(_selected(app, name), progress=progress)


def formats(app: Wiring) -> list[dict[str, Any]]:
    """Each view's format against the one its rows were written in, read without
    changing anything (opening the views, `runners`, brings them to this code's format
    and has them rebuilt by the next catch-up): `[{"name", "format", "stored_format",
    "rebuild_needed"}]`; `stored_format` is None when the view was never made."""
    made: dict[str, ViewRunner] | None = getattr(app, _ATTRIBUTE, None)
    out = []
    for name, cls in PROJECTIONS.items():
        view = made[name].view if made is not None else _recorder(app, cls)
        try:
            stored, position = view.stored_format()
        finally:
            if made is None:
                view.close()
        out.append({"name": name, "format": cls.format_version, "stored_format": stored,
                    "rebuild_needed": stored is not None and stored != cls.format_version
                    and position > 0})
    return out


def status(app: Wiring) -> list[ViewStatus]:
    return [runner.status() for runner in runners(app).values()]


def calendar(app: Wiring, start: dt.date | None = None,
             end: dt.date | None = None) -> list[dict[str, Any]]:
    """The calendar (docs/reference.md, "Calendar entry"): the next session of every course
    to book."""
    runner = runners(app)["calendar"]
    runner.catch_up()
    return cast(CalendarProjection, runner.projection).entries(start, end)


def audit(app: Wiring, course_id: str | None = None) -> list[dict[str, Any]]:
    """The audit trail (docs/reference.md, "Audit entry"): every recorded fact, in
    recording order."""
    runner = runners(app)["audit"]
    runner.catch_up()
    return cast(AuditProjection, runner.projection).entries(course_id)


def verify_views(app: Wiring) -> list[dict[str, Any]]:
    """Each view checked against the log, without changing it: its tracked position is
    not past the last stored event, and its rows are exactly those a rebuild up to that
    position makes (in a scratch database; every event's tag checked on the way). A
    forged, changed or deleted row is a problem naming the view, the table and the row's
    key; `verify` reports them with the event log's."""
    problems: list[dict[str, Any]] = []
    head = app.recorder.max_notification_id() or 0
    for name, runner in runners(app).items():
        position = runner.view.position()
        if position > head:
            problems.append(_view_problem(
                head + 1, name, f"the view's tracked position ({position}) is past the last "
                f"stored event ({head}): new events never reach it (run: coursebook "
                f"projections rebuild {name})"))
            continue
        cls = PROJECTIONS[name]
        scratch = SQLiteViewRecorder(":memory:", cls.name, app.name, cls.tables, cls.ddl)
        try:
            scratch.create_table()
            projection = cls(scratch, app, decode=raw_decoder(app), stored_json=raw_json(app))
            ViewRunner(app, projection, page_size=_page_size()).catch_up(until=position)
            for table in cls.tables:
                problems.extend(_compare(name, table, scratch.query(f"SELECT * FROM {table}"),
                                         runner.view.query(f"SELECT * FROM {table}")))
        finally:
            scratch.close()
    return problems


def _plain(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(bytes(v) if isinstance(v, memoryview | bytearray) else v for v in row)


def _compare(name: str, table: str, expected: list[tuple[Any, ...]],
             found: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows keyed by their first column (the table's key): those forged, changed or
    missing, in key order."""
    want = {row[0]: _plain(row) for row in expected}
    have = {row[0]: _plain(row) for row in found}
    problems = []
    for key in sorted(set(want) | set(have), key=str):
        if key not in want:
            text = "a row no stored event accounts for (forged)"
        elif key not in have:
            text = "a row the log holds was deleted"
        elif want[key] != have[key]:
            text = "a row that does not match the log (changed)"
        else:
            continue
        position = key if isinstance(key, int) else 0
        problems.append(_view_problem(position, name, f"{table} row {key}: {text} (run: "
                                      f"coursebook projections rebuild {name})"))
    return problems


def _view_problem(position: int, name: str, text: str) -> dict[str, Any]:
    return {"position": position, "subject": f"view {name}", "version": None, "problem": text}


def recall(app: Wiring, lot: str, as_of: dt.datetime | None,
           known_at: dt.datetime | None) -> dict[str, Any]:
    """The recall of a lot (docs/reference.md, "Recall"): every session given with a
    product of that lot (both trimmed) among the events at or before `as_of` and recorded
    at or before `known_at`, by valid time then course; each course's status is the fold
    of its selected events, and a patient counts as erased when the erasure is among the
    selected events."""
    runner = runners(app)["recall"]
    runner.catch_up()
    projection = cast(RecallProjection, runner.projection)
    found = projection.sessions(lot, as_of=as_of, known_at=known_at)
    erased = projection.erased([row["patient_key"] for row in found], as_of=as_of,
                               known_at=known_at)
    statuses: dict[str, str | None] = {}
    for course_id in dict.fromkeys(row["course_id"] for row in found):
        state, _ = fold_course(app.course_reader, course_uuid(course_id), as_of=as_of,
                               known_at=known_at)
        statuses[course_id] = None if state is None else state.status
    sessions = [{"course_id": row["course_id"], "session_no": row["session_no"],
                 "at": iso(micros_instant(row["at"])), "actor": row["actor"],
                 "patient_ref": row["patient_ref"],
                 "product": {"name": row["product"].get("name"),
                             "lot": row["product"].get("lot"),
                             "expires_on": row["product"].get("expires_on")},
                 "course_status": statuses[row["course_id"]],
                 "patient_erased": row["patient_key"] in erased} for row in found]
    return {"lot": lot_key(lot), "as_of": iso(as_of), "sessions": sessions,
            "courses": len(statuses), "patients": len({row["patient_ref"] for row in found})}


def micros_instant(value: int) -> dt.datetime:
    """Microseconds since 1970-01-01 UTC (as the recall view keeps instants) as a UTC
    datetime."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(value))
