"""The compliance view: what each course contributes to the compliance report, kept so
that the report as of now reads it instead of the whole log.

One row per course: its `Contribution` (`projections/compliance.py`: the findings the
judge gives under the course's own catalogue from all its events, with the moments from
which the time-dependent ones hold), the course's patient (by pseudonym and key) and the
latest valid time (`at`) among its events. Beside it, each patient erasure with its valid
time, and each practitioner as their events leave them with the latest `at` among those.

The report as of a moment T then evaluates the stored contributions at T for every
course whose events all lie at or before T (and every practitioner likewise), and folds
from the log only the others (events dated after T: the report must not see them). The
fold is the calendar's (`CalendarProjection.fold_page`, the `CourseState` every reader
uses) and the judgement the report's own, so the view holds no second copy of a rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.utils import get_topic

from coursebook.domain import rules
from coursebook.domain.patient import PatientRecord
from coursebook.domain.practitioner import PractitionerRecord
from coursebook.projections.calendar import CalendarProjection, course_topics, patient_key
from coursebook.projections.compliance import Contribution, contribution, fold_practitioner
from coursebook.projections.recall import micros
from coursebook.projections.view_projection import Row, Write

__all__ = ["ComplianceProjection", "Stored"]

_PRACTITIONER_TOPICS = (get_topic(PractitionerRecord.Registered),
                        get_topic(PractitionerRecord.LicenseRenewed))


class Stored:
    """What the view holds for a moment T (`ComplianceProjection.at`)."""

    def __init__(self) -> None:
        self.courses: list[tuple[str, str, Contribution]] = []
        """(course_id, patient_ref, contribution) of the courses whose events all lie at
        or before T, by course id."""
        self.later: list[str] = []
        """The course ids with an event after T: to fold from the log."""
        self.erased: set[str] = set()
        """The keys of the patients erased at or before T."""
        self.practitioners: list[rules.Practitioner] = []
        """The practitioners whose events all lie at or before T."""
        self.later_practitioners: list[UUID] = []
        """The practitioners with an event after T: to fold from the log."""


class ComplianceProjection(CalendarProjection):
    name = "compliance"
    topics = tuple(sorted({*course_topics(), get_topic(PatientRecord.Erased),
                           *_PRACTITIONER_TOPICS}))
    tables: tuple[str, ...] = ("view_compliance", "view_compliance_erased",
                               "view_compliance_practitioners")
    ddl = (
        "CREATE TABLE IF NOT EXISTS view_compliance (course_id TEXT PRIMARY KEY, "
        "patient_key TEXT NOT NULL, patient_ref TEXT NOT NULL, "
        "latest_at INTEGER NOT NULL, contribution TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS view_compliance_erased (position INTEGER PRIMARY KEY, "
        "patient_key TEXT NOT NULL, at INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS view_compliance_practitioners (practitioner_key TEXT "
        "PRIMARY KEY, latest_at INTEGER NOT NULL, practitioner TEXT)",
    )
    format_version = 1
    UPSERT = ("INSERT INTO view_compliance (course_id, patient_key, patient_ref, latest_at, "
              "contribution) VALUES (?, ?, ?, ?, ?) ON CONFLICT (course_id) DO UPDATE "
              "SET latest_at = excluded.latest_at, contribution = excluded.contribution")
    ERASED = "INSERT INTO view_compliance_erased (position, patient_key, at) VALUES (?, ?, ?)"
    PRACTITIONER = ("INSERT INTO view_compliance_practitioners (practitioner_key, latest_at, "
                    "practitioner) VALUES (?, ?, ?) ON CONFLICT (practitioner_key) DO UPDATE "
                    "SET latest_at = excluded.latest_at, practitioner = excluded.practitioner")

    def page(self, rows: Sequence[Row],
             bodies: Sequence[dict[str, Any]] | None = None) -> list[Write]:
        erasure = self._erased_topic
        practitioners = frozenset(_PRACTITIONER_TOPICS)
        courses: list[int] = []
        erased: list[tuple[Any, ...]] = []
        touched_practitioners: dict[Any, int] = {}
        for i, (position, originator, version, topic, state) in enumerate(rows):
            if topic in practitioners:
                touched_practitioners[originator] = version
                continue
            courses.append(i)
            if topic == erasure:
                body = bodies[i] if bodies is not None else self.decode(topic, state)
                erased.append((position, UUID(str(originator)).hex,
                               micros(dt.datetime.fromisoformat(body["at"]["_data_"]))))
        if len(courses) == len(rows):
            touched, _ = self.fold_page(rows, bodies)
        else:
            touched, _ = self.fold_page([rows[i] for i in courses], None if bodies is None
                                        else [bodies[i] for i in courses])
        zone = self.app.zone
        out = []
        for course in touched.values():
            assert course.latest_at is not None  # set by the opening event
            out.append((course.course_id, patient_key(course.patient_ref), course.patient_ref,
                        micros(course.latest_at),
                        orjson.dumps(contribution(course, zone).as_json()).decode()))
        return [(self.UPSERT, out), (self.ERASED, erased),
                (self.PRACTITIONER, [self._practitioner(key, version)
                                     for key, version in touched_practitioners.items()])]

    def _practitioner(self, originator: Any, version: int) -> tuple[Any, ...]:
        """A practitioner's row as their events up to `version` leave them (a handful of
        events: read again from the store)."""
        events = list(self.app.events.get(UUID(str(originator)), lte=version))
        practitioner = fold_practitioner(events)
        document = None if practitioner is None else orjson.dumps({
            "practitioner_id": practitioner.practitioner_id, "role": practitioner.role,
            "license_expires_on": practitioner.license_expires_on.isoformat()}).decode()
        return (UUID(str(originator)).hex, max(micros(e.at) for e in events), document)

    # -- queries -----------------------------------------------------------------------
    def at(self, moment: dt.datetime) -> Stored:
        """What the view holds for a report as of `moment` (see `Stored`)."""
        instant = micros(moment)
        found = Stored()
        query = self.tables_view.query
        for course_id, patient_ref, latest, stored in query(
                "SELECT course_id, patient_ref, latest_at, contribution FROM view_compliance "
                "ORDER BY course_id"):
            if latest > instant:
                found.later.append(course_id)
            else:
                found.courses.append((course_id, patient_ref,
                                      Contribution.from_json(orjson.loads(stored))))
        found.erased = {str(row[0]) for row in query(
            "SELECT DISTINCT patient_key FROM view_compliance_erased WHERE at <= ?",
            (instant,))}
        for key, latest, stored in query(
                "SELECT practitioner_key, latest_at, practitioner "
                "FROM view_compliance_practitioners ORDER BY practitioner_key"):
            if latest > instant:
                found.later_practitioners.append(UUID(str(key)))
            elif stored is not None:
                data = orjson.loads(stored)
                found.practitioners.append(rules.Practitioner(
                    data["practitioner_id"], data["role"],
                    dt.date.fromisoformat(data["license_expires_on"])))
        return found
