"""Questions about what was recorded: a course now or at any moment, its history, the
calendar, the audit trail, the compliance report, and whether the store is intact.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable
from typing import Any

from coursebook.adapters.storage.integrity import SealHead, verify_store
from coursebook.adapters.storage.report_reads import read_report_events
from coursebook.adapters.storage.time_travel import fold_course, stored_rows
from coursebook.domain.commands import (
    parse_timestamp,
)
from coursebook.domain.ids import (
    course_uuid,
    patient_uuid,
)
from coursebook.domain.selection import select_events
from coursebook.errors import Code, Rejected
from coursebook.projections.collector import collector_paused
from coursebook.projections.compliance import Report, build_report, report_topics
from coursebook.projections.course_view import course_document, history_documents
from coursebook.service import read_models
from coursebook.service.view_worker import POLL_SECONDS, follow_views
from coursebook.service.wiring import Wiring

__all__ = ["Queries"]


class Queries(Wiring):
    """Read-only questions; none records anything."""

    # -- queries -----------------------------------------------------------------------
    def course_events(self, course_id: str, *, up_to: int | None = None) -> list[Any]:
        """Every stored event of a course (or its first `up_to`), in order (NOT_FOUND if
        there are none)."""
        to_event = self.mapper.to_domain_event
        rows = stored_rows(self.course_reader, course_uuid(course_id), 0, up_to)
        events = [to_event(row) for row in rows]
        if not events:
            raise Rejected(Code.NOT_FOUND, f"course {course_id!r} does not exist", "course_id")
        return events

    def _erasure(self, patient_ref: str) -> Any | None:
        for event in self.events.get(patient_uuid(patient_ref)):
            if type(event).__name__ == "Erased":
                return event
        return None

    def get_course(self, course_id: str, *, version: int | None = None,
                   as_of: dt.datetime | None = None,
                   known_at: dt.datetime | None = None) -> dict[str, Any]:
        """A course's state (docs/reference.md, "Course"), now or at any moment."""
        as_of = None if as_of is None else parse_timestamp(as_of, "as_of")
        known_at = None if known_at is None else parse_timestamp(known_at, "known_at")
        state, stored = fold_course(self.course_reader, course_uuid(course_id), version=version,
                                    as_of=as_of, known_at=known_at)
        if stored == 0:
            raise Rejected(Code.NOT_FOUND, f"course {course_id!r} does not exist", "course_id")
        if version is not None and version > stored:
            raise Rejected(Code.NOT_FOUND, f"course {course_id!r} has {stored} "
                           "version(s)", "version")
        if state is None:
            raise Rejected(Code.NOT_FOUND, f"course {course_id!r} did not exist then",
                           "course_id")
        erasure = self._erasure(state.patient_ref)
        erased_then = erasure is not None and bool(
            select_events([erasure], as_of=as_of, known_at=known_at))
        if version is not None and erasure is not None and as_of is None and known_at is None:
            erased_then = True
        return course_document(state, self.zone, erased=erased_then,
                               shredded=erasure is not None)

    def get_history(self, course_id: str) -> list[dict[str, Any]]:
        events = self.course_events(course_id)
        patient_ref = events[0].patient_ref
        return history_documents(events, self.zone,
                                 shredded=self._erasure(patient_ref) is not None)

    def calendar(self, from_: dt.date | str | None = None,
                 to: dt.date | str | None = None) -> list[dict[str, Any]]:
        """The next session of every course to book (active or in maintenance, patient not
        erased) whose planned local date, or else target date, lies in [from_, to]
        (bounds inclusive, open when None), as calendar entries."""
        first, last = _date(from_, "from"), _date(to, "to")
        return read_models.calendar(self, first, last)

    def audit(self, course_id: str | None = None) -> list[dict[str, Any]]:
        """Every recorded fact in recording order (or one course's): position, record and
        valid time, subject, event, actor, reason."""
        return read_models.audit(self, course_id)

    def compliance_report(self, as_of: dt.datetime | str | None = None,
                          known_at: dt.datetime | str | None = None) -> Report:
        """The compliance report as it stood at `as_of` (default: the clock's now), from
        the events whose `at` <= as_of and, with `known_at`, recorded at or before it.
        `.document()` is the JSON document, `.html()` the self-contained page."""
        moment = self.clock.now() if as_of is None else parse_timestamp(as_of, "as_of")
        known = None if known_at is None else parse_timestamp(known_at, "known_at")
        with collector_paused():
            return build_report(self.report_events(), as_of=moment, known_at=known,
                                zone=self.zone)

    def compliance(self, as_of: dt.datetime | str | None = None,
                   known_at: dt.datetime | str | None = None) -> dict[str, Any]:
        """The compliance document: `{"as_of", "courses", "findings": [...]}`."""
        return self.compliance_report(as_of, known_at).document()

    def export_fhir(self, course_ids: Iterable[str] | None = None, *,
                    as_of: dt.datetime | str | None = None,
                    known_at: dt.datetime | str | None = None,
                    include_personal: bool = False) -> dict[str, Any]:
        """The courses (all, or those of `course_ids`) as one HL7 FHIR R4 `Bundle` of type
        `collection` (docs/fhir.md), as they stood at `as_of` (valid time) from the events
        recorded at or before `known_at`, as its JSON document. Personal data only with
        `include_personal`, and never a destroyed patient's. A course id that names no
        course then is NOT_FOUND."""
        # Imported on use: the FHIR models take a moment to load, and only this needs them.
        from coursebook.projections.fhir import build_bundle, bundle_course_ids, bundle_document

        moment = None if as_of is None else parse_timestamp(as_of, "as_of")
        known = None if known_at is None else parse_timestamp(known_at, "known_at")
        wanted = None if course_ids is None else list(dict.fromkeys(course_ids))
        with collector_paused():
            bundle = build_bundle(self.report_events(), as_of=moment, known_at=known,
                                  timestamp=self.clock.now(), course_ids=wanted,
                                  include_personal=include_personal)
            document = bundle_document(bundle)
        missing = sorted(set(wanted or ()) - bundle_course_ids(document))
        if missing:
            raise Rejected(Code.NOT_FOUND, f"course {missing[0]!r} does not exist"
                           + (" then" if moment or known else ""), "course_id")
        return document

    def report_events(self) -> Any:
        """The events the compliance report reads, from the whole log, in recording order
        (personal data left encrypted)."""
        return read_report_events(self.recorder, self.mapper, report_topics())

    def verify(self, against: SealHead | bytes | None = None) -> dict[str, Any]:
        """Checks every stored event against its tag and the seal chain. Returns `{"ok",
        "events", "problems", "head"}`: problems ordered by position (the first names the
        first bad place); `head` (a `SealHead`) can be kept elsewhere (`head.dumps(now)`)
        and passed back later as `against` to also catch removed newest events."""
        if isinstance(against, bytes | bytearray):
            against = SealHead.loads(bytes(against))
        return verify_store(self.seal_chain, against=against)

    # -- the views -----------------------------------------------------------------------
    def view_names(self) -> list[str]:
        """The materialised views, by the names `rebuild_views` takes."""
        return list(read_models.PROJECTIONS)

    def views_status(self) -> list[dict[str, Any]]:
        """Each view's position against the head of the log: `[{"name", "position",
        "head", "pending", "up_to_date"}]`."""
        return [status.as_dict() for status in read_models.status(self)]

    def catch_up_views(self, name: str | None = None) -> int:
        """Applies to the views (or the one named) what they have not seen; returns how
        many events."""
        return read_models.catch_up(self, name)

    def rebuild_views(self, name: str | None = None,
                      progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuilds the views (or the one named) from zero; returns how many events were
        processed. `progress(position, head)` is called after each committed page."""
        return read_models.rebuild(self, name, progress)

    def follow_views(self, stop: threading.Event, *, poll: float = POLL_SECONDS,
                     ) -> dict[str, Any]:
        """Runs a view worker until `stop` is set (see `service.view_worker`)."""
        return follow_views(self, stop, poll=poll)


def _date(value: dt.date | str | None, field: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Rejected(Code.INVALID, f"{field}: not a date (YYYY-MM-DD)", field) from None
