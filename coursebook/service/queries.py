"""Questions about what was recorded: a course now or at any moment, its history, the
calendar, the audit trail, the compliance report, and whether the store is intact.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

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
from coursebook.projections.course_view import course_document, history_documents
from coursebook.service.wiring import Wiring

__all__ = ["Queries"]


class Queries(Wiring):
    """Read-only questions; none records anything."""

    # -- queries -----------------------------------------------------------------------
    def course_events(self, course_id: str, *, up_to: int | None = None) -> list[Any]:
        """Every stored event of a course (or its first `up_to`), in order (NOT_FOUND if
        there are none)."""
        to_event = self.mapper.to_domain_event
        events = [to_event(row) for row in stored_rows(self, course_uuid(course_id), 0, up_to)]
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
        """A course's state (CONTRACT section 5), now or at any moment (section 6)."""
        as_of = None if as_of is None else parse_timestamp(as_of, "as_of")
        known_at = None if known_at is None else parse_timestamp(known_at, "known_at")
        state, stored = fold_course(self, course_uuid(course_id), version=version,
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
