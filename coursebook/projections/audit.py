"""The audit trail view: every recorded fact in recording order, with who, when and why.

One row per event (docs/reference.md, "Audit entry"): `position` (its place in the log),
`recorded_at` and `at` (both clocks, UTC), `subject` (course, practitioner, patient_ref
or `clinic`), `event` (its type name), `actor`, `reason` (the stated reason, justification
or spacing-override reason), and `detail`: every other recorded field behind the
decision (rule and its source, gap in days, cautions, overrides, protocol and rules
version, session numbers, codes), never personal data (patient, screening, notes,
practitioner names). Command receipts and the patient index are bookkeeping, not facts,
and are left out; a patient's erasure is in.

Bodies are read straight from the stored JSON (no domain objects): the trail is a
per-event mapping, so a page is one pass and one `executemany`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.utils import get_topic, resolve_topic

from coursebook.domain.course import TreatmentCourse
from coursebook.domain.patient import PatientRecord
from coursebook.domain.practitioner import PractitionerRecord
from coursebook.domain.store_records import ClinicSettings
from coursebook.projections.calendar import course_topics
from coursebook.projections.view_projection import EventSource, Row, ViewProjection, Write

__all__ = ["AuditProjection"]

COLUMNS = ("position", "recorded_at", "at", "subject", "event", "actor", "reason", "detail")

REASON_FIELDS = ("reason", "justification", "spacing_override_reason")
"""The stated why of an event, in this order of preference."""

LEFT_OUT = frozenset({"timestamp", "originator_topic", "at", "actor", "command_id",
                      "patient", "screening", "notes", "name", "course_id",
                      "practitioner_id", "patient_ref", *REASON_FIELDS})
"""Fields not copied into `detail`: shown in their own column, or personal data."""

PERSONAL = frozenset({"patient", "screening", "notes", "name"})
"""Fields never stored in the view, in any form."""

CLINIC_TOPICS = (get_topic(ClinicSettings.Configured), get_topic(ClinicSettings.StoreMigrated))
"""Facts about the store itself: their subject is `clinic`."""
CATALOGUE_TOPICS = (get_topic(ClinicSettings.CatalogueAdopted),)
"""Adoptions of a catalogue: their subject is `catalogue`."""

_UTC_SUFFIX = "+00:00"


def utc(stored: Any) -> str | None:
    """A stored datetime (`{"_type_": "datetime_iso", "_data_": ...}`) as UTC with `Z`."""
    if not isinstance(stored, dict):
        return None
    text: str = stored["_data_"]
    if text.endswith(_UTC_SUFFIX):
        return text[:-6] + "Z"
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC).isoformat()[:-6] + "Z"


def plain(value: Any) -> Any:
    """A stored value as plain JSON: dates and timestamps as text, rules as objects."""
    if isinstance(value, dict):
        kind = value.get("_type_")
        if kind is not None and len(value) == 2:
            data = value["_data_"]
            if kind == "datetime_iso":
                return utc(value)
            if kind in ("spacing_rule", "product"):  # by name (domain/schema.py)
                return dict(data)
            if kind == "protocol":
                return {"name": f"{data['catalogue']}/{data['indication']}",
                        "version": data["version"]}
            if kind == "personal":
                return None
            return plain(data)
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class AuditProjection(ViewProjection):
    name = "audit"
    topics = tuple(sorted({
        *course_topics(),
        get_topic(PractitionerRecord.Registered), get_topic(PractitionerRecord.LicenseRenewed),
        get_topic(PatientRecord.Registered), get_topic(PatientRecord.Erased),
        *CLINIC_TOPICS, *CATALOGUE_TOPICS}))
    tables = ("view_audit",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS view_audit (position INTEGER PRIMARY KEY, "
        "recorded_at TEXT NOT NULL, at TEXT NOT NULL, subject TEXT NOT NULL, "
        "course_id TEXT, event TEXT NOT NULL, actor TEXT, reason TEXT, detail BLOB NOT NULL)",
        "CREATE INDEX IF NOT EXISTS view_audit_course ON view_audit (course_id, position)",
    )
    deferred = ("view_audit_course",)
    format_version = 3  # 1: 0.1.0, details held rules and products by position;
    # 2: before catalogues (details without catalogue, safety, from_medications, aftercare)
    INSERT = ("INSERT INTO view_audit (position, recorded_at, at, subject, course_id, event, "
              "actor, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")

    def __init__(self, view: Any, app: EventSource, *,
                 decode: Callable[[str, bytes], dict[str, Any]],
                 stored_json: Callable[[bytes], bytes] | None) -> None:
        super().__init__(view, app, decode=decode, stored_json=stored_json)
        self.subjects: dict[Any, str] = {}
        self._patient_registered = get_topic(PatientRecord.Registered)
        self._course_prefix = get_topic(TreatmentCourse) + "."
        self._patient_prefix = get_topic(PatientRecord) + "."
        self._topic_facts: dict[str, tuple[str, str, bool]] = {}
        self._unversioned = frozenset(
            topic for topic in self.topics
            if getattr(resolve_topic(topic), "class_version", 1) == 1)
        """Topics whose stored body is at its current version without a version key."""

    def forget(self) -> None:
        self.subjects = {}

    def _subject_key(self, topic: str) -> str:
        if topic.startswith(self._course_prefix):
            return "course_id"
        if topic.startswith(self._patient_prefix):
            return "patient_ref"
        return "practitioner_id"

    def _subject(self, originator: Any, topic: str, body: dict[str, Any]) -> str:
        key = self._subject_key(topic)
        found = body.get(key)
        if isinstance(found, str):
            self.subjects[originator] = found
            return found
        known = self.subjects.get(originator)
        if known is None:  # first met mid-history: the aggregate's first event names it
            first = next(iter(self.app.events.get(UUID(str(originator)), lte=1)))
            known = str(getattr(first, key))
            self.subjects[originator] = known
        return known

    def _facts(self, topic: str) -> tuple[str, str, bool]:
        """(event name, the body field naming the subject or "" for the clinic, whether
        the subject is a course) for a topic, worked out once."""
        facts = self._topic_facts.get(topic)
        if facts is None:
            event = topic.rpartition(".")[2]
            key = ("" if topic in CLINIC_TOPICS or topic in CATALOGUE_TOPICS
                   else self._subject_key(topic))
            facts = (event, key, topic.startswith(self._course_prefix))
            self._topic_facts[topic] = facts
        return facts

    def page(self, rows: Sequence[Row],
             bodies: Sequence[dict[str, Any]] | None = None) -> list[Write]:
        out: list[tuple[Any, ...]] = []
        decode, left_out, stored_json = self.decode, LEFT_OUT, self.stored_json
        if bodies is None:
            bodies = [decode(row[3], row[4]) for row in rows]
        facts_of, subject_of, registered = self._facts, self._subject, self._patient_registered
        append, personal = out.append, PERSONAL
        current = self._unversioned
        for (position, originator, _, topic, state), body in zip(rows, bodies, strict=True):
            if topic == registered:  # the index names the patient: no row
                subject_of(originator, topic, body)
                continue
            event, key, of_course = facts_of(topic)
            recorded_at = utc(body["timestamp"])
            subject = (subject_of(originator, topic, body) if key
                       else "catalogue" if topic in CATALOGUE_TOPICS else "clinic")
            reason = body.get("reason") or body.get("justification") or \
                body.get("spacing_override_reason")
            # Kept in stored form (`plain` makes it JSON when the trail is read). A body
            # without any personal field, stored at its class's current version (no
            # upcaster changed it), is kept as stored, byte for byte.
            if stored_json is not None and personal.isdisjoint(body) \
                    and topic in current:
                detail = stored_json(state)
            else:
                detail = orjson.dumps({key: value for key, value in body.items()
                                       if key not in left_out})
            append((position, recorded_at, utc(body.get("at")) or recorded_at, subject,
                    subject if of_course else None, event, body.get("actor"), reason,
                    detail))
        return [(self.INSERT, out)]

    # -- queries -----------------------------------------------------------------------
    def entries(self, course_id: str | None = None) -> list[dict[str, Any]]:
        """The trail in recording order; with `course_id`, only that course's events."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM view_audit"
        params: list[Any] = []
        if course_id is not None:
            sql += " WHERE course_id = ?"
            params.append(course_id)
        sql += " ORDER BY position"
        out = []
        for row in self.tables_view.query(sql, params):
            entry = dict(zip(COLUMNS, row, strict=True))
            entry["detail"] = plain({key: value for key, value in
                                     orjson.loads(entry["detail"]).items()
                                     if key not in LEFT_OUT})
            out.append(entry)
        return out
