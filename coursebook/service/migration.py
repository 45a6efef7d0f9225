"""Bringing a store to this coursebook: check that it reads, and do what a stored-format
change needs beyond upcasting (docs/schema-evolution.md).

- `check(app)` reads the WHOLE store through the current code, writing nothing: every
  stored event (its topic resolved, its body brought to its class's version by the
  upcasters, decoded by the mapper), every course folded from its events, every course
  snapshot examined (usable, or ignored and why), every view's format against the one
  its rows were written in. It reports, per event type and stored version, how many
  records it read and which upcasters that took; `ok` is true only when every record
  reads and every course folds. Problems are named by position and subject (ids and
  references, as `verify` names them), never by personal data.
- `migrate(app, actor=..., reason=...)` runs the check and, only if it is ok, rebuilds the
  views whose format changed (opening them would have them rebuilt anyway; here it is
  done and reported), replaces the snapshots this code cannot use (a cache: deleted and
  taken again at the same version), and records `ClinicSettings.StoreMigrated`, which
  the audit trail shows. It never rewrites a stored event.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import attrs
from eventsourcing.persistence import MapperDeserialisationError

from coursebook.adapters.storage.snapshots import NEWER, NOT_INTACT, OTHER_FORM
from coursebook.domain.commands import identifier, text
from coursebook.domain.course import TreatmentCourse
from coursebook.domain.course_state import CourseState
from coursebook.domain.ids import CLINIC_ID
from coursebook.domain.schema import (
    NewerRecord,
    UnknownRecord,
    record_class,
    stored_version,
    upcasters,
)
from coursebook.domain.store_records import ClinicSettings
from coursebook.domain.topics import current_topic
from coursebook.errors import StoreUnavailable
from coursebook.logs import get_logger
from coursebook.service import read_models
from coursebook.service.wiring import Wiring

__all__ = ["PROBLEMS_LISTED", "check", "migrate"]

PAGE = 1000
"""Stored events read per query."""

PROBLEMS_LISTED = 100
"""Problems listed in a report (the first ones, by position); `problem_count` has them all."""

log = get_logger("coursebook")


@attrs.define
class _Kind:
    """Stored records of one event type at one stored version."""

    type: str
    stored_version: int | None
    current_version: int | None
    upcasters: list[str]
    records: int = 0
    failed: int = 0
    old_topics: set[str] = attrs.Factory(set)

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "stored_version": self.stored_version,
                "current_version": self.current_version, "records": self.records,
                "failed": self.failed, "upcasters": self.upcasters,
                "old_topics": sorted(self.old_topics)}


@attrs.define
class _Scan:
    """What one pass over the store found (`check`'s report, and what `migrate` needs)."""

    kinds: dict[tuple[str, int | None], _Kind] = attrs.Factory(dict)
    problems: list[dict[str, Any]] = attrs.Factory(list)
    subjects: dict[UUID, str] = attrs.Factory(dict)
    courses: dict[UUID, CourseState | None] = attrs.Factory(dict)
    records: int = 0
    snapshots: dict[str, int] = attrs.Factory(lambda: {
        "usable": 0, "ignored": 0, OTHER_FORM: 0, NEWER: 0, NOT_INTACT: 0})
    unusable: list[tuple[UUID, int]] = attrs.Factory(list)
    """Snapshots of another form (or a newer one): (course id, version), to replace."""

    def problem(self, position: int | None, originator: UUID | None, version: int | None,
                text: str) -> None:
        subject = None if originator is None else self.subjects.get(originator,
                                                                    originator.hex)
        self.problems.append({"position": position, "subject": subject, "version": version,
                              "problem": text})


def check(app: Wiring) -> dict[str, Any]:
    """The store read through this code (module docstring): `{"ok", "records",
    "events": [...], "snapshots", "views", "courses", "problems", "problem_count"}`."""
    return _report(app, _scan(app), read_models.formats(app))


def migrate(app: Wiring, *, actor: str, reason: str | None = None) -> dict[str, Any]:
    """Checks the store and, only when it reads, brings its views and snapshots to this
    code and records `ClinicSettings.StoreMigrated` (module docstring). Returns `{"check":
    report, "migrated": bool, "views_rebuilt": [...], "snapshots_replaced": n, "recorded":
    {"event", "position"} | None}`."""
    actor = identifier(actor, "actor")
    reason = None if reason is None else text().check(reason, "reason")
    views = read_models.formats(app)  # before anything opens the views
    scan = _scan(app)
    report = _report(app, scan, views)
    done: dict[str, Any] = {"check": report, "migrated": False, "views_rebuilt": [],
                            "snapshots_replaced": 0, "recorded": None}
    if not report["ok"]:
        return done
    for view in views:
        if view["rebuild_needed"]:
            events = read_models.rebuild(app, view["name"])
            log.info("view_rebuilt", view=view["name"], format=view["format"],
                     stored_format=view["stored_format"], events=events)
            done["views_rebuilt"].append({"name": view["name"], "from_format":
                                          view["stored_format"], "to_format": view["format"],
                                          "events": events})
    done["snapshots_replaced"] = _replace_snapshots(app, scan.unusable)
    from_versions: dict[str, int] = {}
    to_versions: dict[str, int] = {}
    for kind in scan.kinds.values():
        if kind.upcasters and kind.stored_version is not None \
                and kind.current_version is not None:
            from_versions[kind.type] = min(kind.stored_version,
                                           from_versions.get(kind.type, kind.stored_version))
            to_versions[kind.type] = kind.current_version
    settings: Any = app._load(ClinicSettings, CLINIC_ID, copy=True)
    if settings is None:
        raise StoreUnavailable("the store holds no clinic settings (run init)")
    settings.record_migration(
        recorded_at=app.clock.now(), actor=actor, reason=reason,
        coursebook_version=_version(), from_versions=dict(sorted(from_versions.items())),
        to_versions=dict(sorted(to_versions.items())),
        views_rebuilt=[v["name"] for v in done["views_rebuilt"]],
        snapshots_replaced=done["snapshots_replaced"])
    recordings = app.save(settings)
    position = recordings[-1].notification.id if recordings else None
    log.info("store_migrated", actor=actor, views_rebuilt=len(done["views_rebuilt"]),
             snapshots_replaced=done["snapshots_replaced"])
    done.update(migrated=True, recorded={"event": "ClinicSettings.StoreMigrated",
                                         "position": position})
    return done


# -- the pass over the store ---------------------------------------------------------------
def _notifications(app: Wiring) -> Iterator[Any]:
    start = 1
    while True:
        page = app.recorder.select_notifications(start, PAGE)
        yield from page
        if len(page) < PAGE:
            return
        start = page[-1].id + 1


def _scan(app: Wiring) -> _Scan:
    scan = _Scan()
    for notification in _notifications(app):
        scan.records += 1
        event = _read(app, scan, notification)
        if event is not None:
            _fold(scan, notification, event)
    _examine_snapshots(app, scan)
    return scan


def _read(app: Wiring, scan: _Scan, n: Any) -> Any | None:
    """The stored event `n` decoded by the mapper (counted under its type and stored
    version), or None with the problem noted."""
    originator = UUID(str(n.originator_id))
    try:
        cls = record_class(n.topic)
    except UnknownRecord as error:
        _kind(scan, n.topic.rpartition(":")[2] or n.topic, None, None).failed += 1
        _unreadable(scan, n, originator, None, str(error))
        return None
    name = str(cls.__qualname__)
    kind = _kind(scan, name, _stored_version(app, n.state), cls)
    if n.topic != current_topic(n.topic):
        kind.old_topics.add(n.topic)
    try:
        event = app.mapper.to_domain_event(n)
    except NewerRecord as error:
        kind.failed += 1
        _unreadable(scan, n, originator, cls, str(error))
        return None
    except MapperDeserialisationError as error:
        kind.failed += 1
        cause = type(error.__cause__ or error).__name__
        _unreadable(scan, n, originator, cls,
                    f"a stored {name} cannot be decoded ({cause}): the store was changed "
                    "outside the engine (run: coursebook verify)")
        return None
    kind.records += 1
    if originator not in scan.subjects:
        scan.subjects[originator] = _subject(event)
    return event


def _stored_version(app: Wiring, state: bytes) -> int | None:
    """The version a stored body was written at (None: not a JSON object at all; the
    mapper then names the problem)."""
    body_of = getattr(app.mapper, "stored_body", None)
    if body_of is None:  # pragma: no cover - the application always tags its events
        return None
    try:
        body = body_of(state)
    except Exception:
        return None
    return stored_version(body) if isinstance(body, dict) else None


def _unreadable(scan: _Scan, n: Any, originator: UUID, cls: Any, text: str) -> None:
    """A record that does not read: named, and its course (if it is one) not folded."""
    scan.problem(n.id, originator, n.originator_version, text)
    if originator in scan.courses or (cls is not None and issubclass(
            cls, (TreatmentCourse.Opened, TreatmentCourse.Event))):
        scan.courses[originator] = None


def _kind(scan: _Scan, name: str, stored: int | None, cls: Any) -> _Kind:
    found = scan.kinds.get((name, stored))
    if found is None:
        current = None if cls is None else int(getattr(cls, "class_version", 1))
        steps = [] if cls is None or stored is None or current is None or stored > current \
            else upcasters(cls, stored)
        found = scan.kinds[(name, stored)] = _Kind(name, stored, current, steps)
    return found


def _subject(event: Any) -> str:
    """A name for the aggregate an event belongs to, as `verify` names it (no personal
    data: ids and references only)."""
    for attribute, label in (("course_id", "course"), ("practitioner_id", "practitioner"),
                             ("patient_ref", "patient"), ("command_id", "command")):
        value = getattr(event, attribute, None)
        if isinstance(value, str):
            return f"{label} {value}"
    return "clinic" if event.originator_id == CLINIC_ID else \
        str(type(event).__qualname__.split(".")[0])


def _fold(scan: _Scan, n: Any, event: Any) -> None:
    """Applies a course event to its course's state, as the aggregate does."""
    originator = UUID(str(n.originator_id))
    courses = scan.courses
    if isinstance(event, TreatmentCourse.Opened):
        try:
            courses[originator] = CourseState.start(event)
        except Exception as error:
            courses[originator] = None
            scan.problem(n.id, originator, n.originator_version,
                         f"the course does not fold: its opening fails "
                         f"({type(error).__name__})")
        return
    if not isinstance(event, TreatmentCourse.Event):
        return
    if originator not in courses:
        courses[originator] = None
        scan.problem(n.id, originator, n.originator_version,
                     "a course event comes before the course's opening")
        return
    state = courses[originator]
    if state is None:
        return  # already named: a record of it did not read, or did not fold
    try:
        state.apply(event)
    except Exception as error:
        courses[originator] = None
        scan.problem(n.id, originator, n.originator_version,
                     f"the course does not fold at version {n.originator_version} "
                     f"({type(error).__name__})")


def _examine_snapshots(app: Wiring, scan: _Scan) -> None:
    store: Any = app.snapshots
    if store is None:
        return
    for originator in scan.courses:
        for stored in store.recorder.select_events(originator):
            snapshot, reason = store.examine(stored)
            if snapshot is not None:
                scan.snapshots["usable"] += 1
                continue
            scan.snapshots["ignored"] += 1
            scan.snapshots[reason] += 1
            if reason in (OTHER_FORM, NEWER):
                scan.unusable.append((originator, int(stored.originator_version)))


def _replace_snapshots(app: Wiring, unusable: list[tuple[UUID, int]]) -> int:
    """Deletes the snapshots this code cannot use and takes each again at its version."""
    store: Any = app.snapshots
    replaced = 0
    for originator, version in unusable:
        (stored,) = store.recorder.select_events(originator, gt=version - 1, lte=version)
        if not store.delete(stored):
            continue
        app.take_snapshot(originator, version=version)
        log.info("snapshot_replaced", aggregate=str(originator), version=version)
        replaced += 1
    return replaced


def _report(app: Wiring, scan: _Scan, views: list[dict[str, Any]]) -> dict[str, Any]:
    events = sorted(scan.kinds.values(),
                    key=lambda k: (k.type, -1 if k.stored_version is None else k.stored_version))
    problems = sorted(scan.problems, key=lambda p: (p["position"] is None, p["position"]))
    snapshots = scan.snapshots
    return {
        "ok": not problems,
        "records": scan.records,
        "events": [kind.as_dict() for kind in events],
        "snapshots": {"usable": snapshots["usable"], "ignored": snapshots["ignored"],
                      "other_form": snapshots[OTHER_FORM], "newer": snapshots[NEWER],
                      "not_intact": snapshots[NOT_INTACT]},
        "views": views,
        "courses": len(scan.courses),
        "courses_folded": sum(state is not None for state in scan.courses.values()),
        "problems": problems[:PROBLEMS_LISTED],
        "problem_count": len(problems),
    }


def _version() -> str:
    import importlib.metadata  # here: its import costs every command-line call otherwise

    try:
        return importlib.metadata.version("coursebook")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a tree
        return "unknown"
