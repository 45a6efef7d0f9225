"""The recall view: every session given, keyed by the lot of each product it used.

A field safety notice names a lot; the clinic must find every session given with it
without reading the whole log. One row per (session, distinct lot) with the lot trimmed
of surrounding whitespace (`lot_key`, the same trimming the question's lot gets), the
course, the session number, the product as recorded, the actor, the patient by
pseudonym (`patient_ref`, never personal data), and both clocks as UTC microseconds
(`at` for valid time, `recorded_at` for record time) so that `--as-of` and `--known-at`
select rows with one indexed comparison each. A second table keeps each patient's
erasure with its two clocks, so that whether a patient was erased "by the moment asked
about" is answered from the view too.

Course status as of a moment is not kept here: it is the fold of the course's selected
events (`CourseState`, the one fold every reader uses), which the service asks of the
courses a recall finds.

Bodies are read straight from the stored JSON (no domain objects). The course id and
patient of a course's later events come from its opening event, remembered per
aggregate (read from the store when a page first meets a course mid-history).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.utils import get_topic

from coursebook.domain.course import TreatmentCourse
from coursebook.domain.ids import patient_uuid
from coursebook.domain.patient import PatientRecord
from coursebook.projections.view_projection import EventSource, Row, ViewProjection, Write

__all__ = ["RecallProjection", "lot_key", "micros"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def lot_key(lot: str) -> str:
    """A lot as recall compares it: surrounding whitespace trimmed."""
    return lot.strip()


def micros(instant: dt.datetime) -> int:
    """A tz-aware instant as whole microseconds since 1970-01-01 UTC (exact, sortable)."""
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _stored_micros(stored: Any) -> int:
    return micros(dt.datetime.fromisoformat(stored["_data_"]))


def _product(stored: Any) -> dict[str, Any]:
    """A stored product (by name, domain/schema.py) as a plain mapping."""
    if isinstance(stored, dict) and stored.get("_type_") == "product":
        return dict(stored["_data_"])
    return dict(stored)


class RecallProjection(ViewProjection):
    name = "recall"
    topics = tuple(sorted({get_topic(TreatmentCourse.Opened),
                           get_topic(TreatmentCourse.SessionGiven),
                           get_topic(PatientRecord.Erased)}))
    tables = ("view_recall", "view_recall_erased")
    ddl = (
        "CREATE TABLE IF NOT EXISTS view_recall (position INTEGER NOT NULL, "
        "lot TEXT NOT NULL, course_id TEXT NOT NULL, session_no INTEGER NOT NULL, "
        "at INTEGER NOT NULL, recorded_at INTEGER NOT NULL, actor TEXT, "
        "patient_ref TEXT NOT NULL, patient_key TEXT NOT NULL, product TEXT NOT NULL, "
        "PRIMARY KEY (position, lot))",
        "CREATE TABLE IF NOT EXISTS view_recall_erased (position INTEGER PRIMARY KEY, "
        "patient_key TEXT NOT NULL, at INTEGER NOT NULL, recorded_at INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS view_recall_lot ON view_recall (lot, at)",
        "CREATE INDEX IF NOT EXISTS view_recall_erased_patient "
        "ON view_recall_erased (patient_key)",
    )
    deferred = ("view_recall_lot", "view_recall_erased_patient")
    INSERT = ("INSERT INTO view_recall (position, lot, course_id, session_no, at, "
              "recorded_at, actor, patient_ref, patient_key, product) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    ERASED = ("INSERT INTO view_recall_erased (position, patient_key, at, recorded_at) "
              "VALUES (?, ?, ?, ?)")

    def __init__(self, view: Any, app: EventSource, *,
                 decode: Callable[[str, bytes], dict[str, Any]],
                 stored_json: Callable[[bytes], bytes] | None) -> None:
        super().__init__(view, app, decode=decode, stored_json=stored_json)
        self.courses: dict[Any, tuple[str, str]] = {}
        self._opened = get_topic(TreatmentCourse.Opened)
        self._given = get_topic(TreatmentCourse.SessionGiven)
        self._erased = get_topic(PatientRecord.Erased)

    def forget(self) -> None:
        self.courses = {}

    def _course(self, originator: Any) -> tuple[str, str]:
        """(course_id, patient_ref) of a course aggregate."""
        known = self.courses.get(originator)
        if known is None:  # first met mid-history: its opening event names it
            first = next(iter(self.app.events.get(UUID(str(originator)), lte=1)))
            known = self.courses[originator] = (str(first.course_id), str(first.patient_ref))
        return known

    def page(self, rows: Sequence[Row],
             bodies: Sequence[dict[str, Any]] | None = None) -> list[Write]:
        given: list[tuple[Any, ...]] = []
        erased: list[tuple[Any, ...]] = []
        opened, session, erasure = self._opened, self._given, self._erased
        decode = self.decode
        for i, (position, originator, _, topic, state) in enumerate(rows):
            body = bodies[i] if bodies is not None else decode(topic, state)
            if topic == opened:
                self.courses[originator] = (body["course_id"], body["patient_ref"])
            elif topic == session:
                course_id, patient_ref = self._course(originator)
                at, recorded = _stored_micros(body["at"]), _stored_micros(body["timestamp"])
                seen: set[str] = set()
                for stored in body["products"]:
                    product = _product(stored)
                    key = lot_key(str(product.get("lot", "")))
                    if key in seen:  # one row per session and lot: the first product
                        continue
                    seen.add(key)
                    given.append((position, key, course_id, body["session_no"], at, recorded,
                                  body.get("actor"), patient_ref,
                                  patient_uuid(patient_ref).hex,
                                  orjson.dumps(product).decode()))
            elif topic == erasure:
                erased.append((position, UUID(str(originator)).hex,
                               _stored_micros(body["at"]),
                               _stored_micros(body["timestamp"])))
        return [(self.INSERT, given), (self.ERASED, erased)]

    # -- queries -----------------------------------------------------------------------
    def sessions(self, lot: str, *, as_of: dt.datetime | None,
                 known_at: dt.datetime | None) -> list[dict[str, Any]]:
        """The sessions given with `lot` (trimmed) among the selected events (valid time
        at or before `as_of`, recorded at or before `known_at`; open when None), ordered
        by valid time, then course id, then session number."""
        sql = ("SELECT course_id, session_no, at, actor, patient_ref, patient_key, product "
               "FROM view_recall WHERE lot = ?")
        params: list[Any] = [lot_key(lot)]
        if as_of is not None:
            sql += " AND at <= ?"
            params.append(micros(as_of))
        if known_at is not None:
            sql += " AND recorded_at <= ?"
            params.append(micros(known_at))
        sql += " ORDER BY at, course_id, session_no"
        columns = ("course_id", "session_no", "at", "actor", "patient_ref", "patient_key",
                   "product")
        out = []
        for row in self.tables_view.query(sql, params):
            found = dict(zip(columns, row, strict=True))
            found["product"] = orjson.loads(found["product"])
            out.append(found)
        return out

    def erased(self, patient_keys: Sequence[str], *, as_of: dt.datetime | None,
               known_at: dt.datetime | None) -> set[str]:
        """Those of `patient_keys` whose erasure is among the selected events."""
        keys = sorted(set(patient_keys))
        out: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            sql = (f"SELECT DISTINCT patient_key FROM view_recall_erased "
                   f"WHERE patient_key IN ({', '.join('?' * len(chunk))})")
            params: list[Any] = list(chunk)
            if as_of is not None:
                sql += " AND at <= ?"
                params.append(micros(as_of))
            if known_at is not None:
                sql += " AND recorded_at <= ?"
                params.append(micros(known_at))
            out.update(str(row[0]) for row in self.tables_view.query(sql, params))
        return out
