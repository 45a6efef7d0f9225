"""Questions about what was recorded: a course now or at any moment, its history, the
calendar, the audit trail, the compliance report, and whether the store is intact.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from coursebook.adapters.storage.integrity import SealHead, subject_name, verify_store
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
from coursebook.errors import Code, Rejected, Tampered
from coursebook.projections.collector import collector_paused
from coursebook.projections.course_view import course_document, history_documents
from coursebook.service.view_worker import POLL_SECONDS, follow_views
from coursebook.service.wiring import Wiring

if TYPE_CHECKING:
    from coursebook.projections.compliance import Report

# The views (`read_models`) and the compliance report are imported by the methods that use
# them, so that a call reading one course (`course show`) does not import them.

__all__ = ["Queries"]

MAX_VERSION = 2**63 - 1
"""The largest version a store can count (a signed 64-bit integer in both stores)."""


@contextlib.contextmanager
def _naming(course_id: str) -> Iterator[None]:
    """A `Tampered` raised while reading the course's own events names the course."""
    try:
        yield
    except Tampered as error:
        if error.subject == course_uuid(course_id).hex:
            raise error.naming(f"course {course_id}") from None
        raise


class Queries(Wiring):
    """Read-only questions; none records anything (one about a moment already past,
    `known_at`, may raise the store's known horizon: adapters/storage/record_time.py)."""

    # -- queries -----------------------------------------------------------------------
    @contextlib.contextmanager
    def naming_tampered(self) -> Iterator[None]:
        """A `Tampered` raised inside names its subject (`course C1`, ...) when the
        aggregate's first event still reads, rather than its id."""
        try:
            yield
        except Tampered as error:
            name = subject_name(self.seal_chain, error.subject)
            if name is None:
                raise
            raise error.naming(name) from None

    def course_events(self, course_id: str, *, up_to: int | None = None) -> list[Any]:
        """Every stored event of a course (or its first `up_to`), in order (NOT_FOUND if
        there are none)."""
        to_event = self.mapper.to_domain_event
        with _naming(course_id):
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
        self.settle_known_at(known_at)
        if version is not None:  # beyond what a store can count: asking for all of them
            version = min(version, MAX_VERSION)
        with _naming(course_id):
            state, stored = fold_course(self.course_reader, course_uuid(course_id),
                                        version=version, as_of=as_of, known_at=known_at)
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
        from coursebook.service import read_models

        first, last = _date(from_, "from"), _date(to, "to")
        with self.naming_tampered():
            return read_models.calendar(self, first, last)

    def audit(self, course_id: str | None = None) -> list[dict[str, Any]]:
        """Every recorded fact in recording order (or one course's): position, record and
        valid time, subject, event, actor, reason."""
        from coursebook.service import read_models

        with self.naming_tampered():
            return read_models.audit(self, course_id)

    def compliance_report(self, as_of: dt.datetime | str | None = None,
                          known_at: dt.datetime | str | None = None, *,
                          what_if: str | None = None) -> Report:
        """The compliance report as it stood at `as_of` (default: the clock's now), from
        the events whose `at` <= as_of and, with `known_at`, recorded at or before it.
        As of now (no `as_of`, `known_at` or `what_if`) it is read from the compliance
        view (`service.compliance_now`); otherwise from the stored events.
        `.document()` is the JSON document, `.html()` the self-contained page.

        `what_if` (a catalogue reference, `name@version` or a file): the same recorded
        facts judged as though every course had been opened under that catalogue, with
        `what_if` `{"catalogue", "added", "removed", "not_covered"}` against the recorded
        judgement. Nothing is recorded. `INVALID` (`catalogue...`) for a bad reference."""
        from coursebook.projections.compliance import build_report, what_if_report
        from coursebook.service.compliance_now import compliance_now

        moment = self.clock.now() if as_of is None else parse_timestamp(as_of, "as_of")
        known = None if known_at is None else parse_timestamp(known_at, "known_at")
        self.settle_known_at(known)
        under = None if what_if is None else self._catalogue(what_if)
        with collector_paused(), self.naming_tampered():
            if as_of is None and known is None and under is None:
                return compliance_now(self, moment)  # from the compliance view
            if under is None:
                return build_report(self.report_events(), as_of=moment, known_at=known,
                                    zone=self.zone)
            events = list(self.report_events())
            recorded = build_report(events, as_of=moment, known_at=known, zone=self.zone)
            imagined = build_report(events, as_of=moment, known_at=known, zone=self.zone,
                                    under=under)
            return what_if_report(recorded, imagined)

    def compliance(self, as_of: dt.datetime | str | None = None,
                   known_at: dt.datetime | str | None = None, *,
                   what_if: str | None = None) -> dict[str, Any]:
        """The compliance document: `{"as_of", "courses", "findings": [...]}`, and
        `"what_if"` with `what_if` (see `compliance_report`)."""
        return self.compliance_report(as_of, known_at, what_if=what_if).document()

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
        self.settle_known_at(known)
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
        from coursebook.projections.compliance import report_topics

        return read_report_events(self.recorder, self.mapper, report_topics())

    def recall(self, lot: str, as_of: dt.datetime | str | None = None,
               known_at: dt.datetime | str | None = None) -> dict[str, Any]:
        """Every session given with a product of lot `lot` (compared trimmed), as it stood
        at `as_of` (default: the clock's now) from the events recorded at or before
        `known_at`: `{"lot", "as_of", "sessions": [{"course_id", "session_no", "at",
        "actor", "patient_ref", "product": {"name", "lot", "expires_on"},
        "course_status", "patient_erased"}], "courses", "patients"}`, sessions by `at`
        then `course_id`. Patients appear by pseudonym only; an unknown lot gives no
        sessions. INVALID (field `lot`) when the lot is empty."""
        from coursebook.service import read_models

        if not isinstance(lot, str) or not lot.strip():
            raise Rejected(Code.INVALID, "lot: a lot number is required", "lot")
        moment = self.clock.now() if as_of is None else parse_timestamp(as_of, "as_of")
        known = None if known_at is None else parse_timestamp(known_at, "known_at")
        self.settle_known_at(known)
        return read_models.recall(self, lot, moment, known)

    def verify(self, against: SealHead | bytes | None = None) -> dict[str, Any]:
        """Checks every stored event against its tag and the seal chain, then (when the log
        is intact) every view against the log (`read_models.verify_views`). Returns `{"ok",
        "events", "problems", "head"}` (and `"pending_erasures"`, as in `key_status`, when
        some erasure is pending): problems ordered by position (the first names the first
        bad place); `head` (a `SealHead`) can be kept elsewhere (`head.dumps(now)`) and
        passed back later as `against` to also catch removed newest events."""
        from coursebook.service import read_models

        if isinstance(against, bytes | bytearray):
            against = SealHead.loads(bytes(against))
        result = verify_store(self.seal_chain, against=against, keyring=self.keyring)
        if result["ok"]:  # views are checked against a log found intact
            views = read_models.verify_views(self)
            if views:
                result["problems"] = sorted([*result["problems"], *views],
                                            key=lambda p: p["position"])
                result["ok"] = False
        # Not tampering, but not finished either: erasures whose old key copies may
        # still be in the store's files (docs/privacy.md).
        pending = self.keyring.pending_erasures()
        if pending:  # (absent otherwise: the document stays what it always was)
            result["pending_erasures"] = pending
        return result

    # -- the views -----------------------------------------------------------------------
    def view_names(self) -> list[str]:
        """The materialised views, by the names `rebuild_views` takes."""
        from coursebook.service import read_models

        return list(read_models.PROJECTIONS)

    def views_status(self) -> list[dict[str, Any]]:
        """Each view's position against the head of the log: `[{"name", "position",
        "head", "pending", "up_to_date"}]`."""
        from coursebook.service import read_models

        return [status.as_dict() for status in read_models.status(self)]

    def catch_up_views(self, name: str | None = None) -> int:
        """Applies to the views (or the one named) what they have not seen; returns how
        many events."""
        from coursebook.service import read_models

        with self.naming_tampered():
            return read_models.catch_up(self, name)

    def rebuild_views(self, name: str | None = None,
                      progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuilds the views (or the one named) from zero; returns how many events were
        processed. `progress(position, head)` is called after each committed page."""
        from coursebook.service import read_models

        with self.naming_tampered():
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
