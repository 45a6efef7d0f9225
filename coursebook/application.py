"""The application service: one method per command (docs/reference.md), plus queries.

`Coursebook` is an eventsourcing `Application`. Every accepted command saves its events and
a `CommandReceipt` in one transaction, so idempotency is atomic with the change itself.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import deepcopy
from typing import Any, ClassVar
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Mapper,
    OperationalError,
    Transcoder,
)
from eventsourcing.utils import get_topic

from coursebook.adapters.bulk_reads import recorded_originators
from coursebook.adapters.keys import (
    MASTER_KEY_ENV,
    Keyring,
    MasterKey,
    configured_master_key,
    missing_key,
)
from coursebook.adapters.keys import table_for as key_table_for
from coursebook.adapters.logs import get_logger
from coursebook.adapters.sealing import SealingMapper, SealTable, seal_table_for
from coursebook.adapters.snapshots import (
    SNAPSHOT_INTERVAL,
    SnapshotStore,
    snapshot_transcodings,
)
from coursebook.adapters.time_travel import fold_course, stored_rows
from coursebook.adapters.transcoding import OrjsonTranscoder, default_transcodings
from coursebook.clock import Clock, SystemClock
from coursebook.domain.bookkeeping import ClinicSettings, CommandReceipt, body_digest
from coursebook.domain.commands import (
    COMMANDS,
    ParsedCommand,
    canonical_body,
    invalid,
    parse_command,
    parse_timestamp,
    read_command_id,
)
from coursebook.domain.course import Context, TreatmentCourse
from coursebook.domain.ids import (
    CLINIC_ID,
    command_uuid,
    course_uuid,
    patient_uuid,
    practitioner_uuid,
)
from coursebook.domain.patient import PatientRecord
from coursebook.domain.practitioner import PractitionerRecord
from coursebook.domain.protocols import Catalogue, default_catalogue
from coursebook.domain.values import Product
from coursebook.errors import Code, Rejected, StoreUnavailable
from coursebook.freshness import CacheFreshness
from coursebook.projections.course_view import course_document, history_documents

__all__ = ["Coursebook", "Outcome"]

log = get_logger("coursebook")


@attrs.frozen
class Outcome:
    """What became of an accepted command."""

    status: str  # "applied" | "duplicate"
    command: str
    command_id: str
    subject: str
    version: int | None = None


Handler = Callable[["Coursebook", ParsedCommand], tuple[str, int | None, list[Any]]]


class Coursebook(Application[UUID]):
    """Treatment courses, their rules, and the queries a clinic and a reviewer ask."""

    name = "coursebook"

    CACHE = {"AGGREGATE_CACHE_MAXSIZE": "2000"}
    """The library's aggregate cache: a command loads its course, actor and patient from
    memory, fast-forwarded with the events stored since (so other writers are seen), and
    gets a deep copy (so a refused or failed command never changes the cached one)."""

    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        TreatmentCourse: SNAPSHOT_INTERVAL}
    """A course is snapshotted every `SNAPSHOT_INTERVAL` versions (adapters/snapshots.py);
    loads and time-travel questions start from the latest usable snapshot."""

    def __init__(self, env: Mapping[str, str] | None = None, *, clock: Clock | None = None,
                 catalogue: Catalogue | None = None, master_key: MasterKey | None = None,
                 ) -> None:
        """`master_key`: the store's master key; else `COURSEBOOK_MASTER_KEY` from `env` or
        the process environment; a store kept only in memory makes a passing one."""
        self.clock: Clock = clock or SystemClock()
        self.catalogue = catalogue or default_catalogue()
        self._zone: ZoneInfo | None = None
        self._closing: list[Callable[[], None]] = []
        self.keyring = Keyring(master_key or _master_key(env))
        self._batch: _Batch | None = None
        super().__init__({**self.CACHE, **(env or {})})
        create = self.env.get("CREATE_TABLE", "y").lower() in ("y", "yes", "true", "1", "on")
        self.keyring.attach(key_table_for(self.recorder, create=create))
        self.seal_table: SealTable = seal_table_for(self.recorder, create=create)
        cache = self.repository.cache
        self._freshness = None if cache is None else CacheFreshness(
            self.recorder, cache, erasure_topic=get_topic(PatientRecord.Erased),
            on_erasure=self.keyring.forget_cached)

    @property
    def integrity_key(self) -> bytes:
        """The HMAC key of event tags and the seal chain (derived, never stored)."""
        return self.keyring.master.integrity

    def construct_mapper(self) -> Mapper[UUID]:
        return SealingMapper(self.construct_transcoder(), compressor=self.factory.compressor(),
                             cipher=self.factory.cipher(), key=self.integrity_key)

    def on_close(self, callback: Callable[[], None]) -> None:
        """Runs `callback` when the application closes (the read models' connections)."""
        self._closing.append(callback)

    def close(self) -> None:
        while self._closing:
            self._closing.pop()()
        super().close()

    def construct_transcoder(self) -> Transcoder:
        transcoder = OrjsonTranscoder()
        for transcoding in self.transcodings():
            transcoder.register(transcoding)
        return transcoder

    def transcodings(self) -> list[Any]:
        """The value types events (and snapshots) may hold; personal data is encrypted
        per patient."""
        return [*default_transcodings(self.keyring), *snapshot_transcodings()]

    def take_snapshot(self, aggregate_id: UUID, version: int | None = None,
                      projector_func: Any = None) -> None:
        """The library's `take_snapshot`, with the course's latest segment floor: the
        earliest valid time of the events since the interval before (`--as-of` skips
        a segment whose floor is after the moment asked about)."""
        aggregate: Any = self.repository.get(aggregate_id, version=version,
                                             projector_func=projector_func or _project)
        snapshot_class: Any = getattr(type(aggregate), "Snapshot", self.snapshot_class)
        snapshot = snapshot_class.take(aggregate)
        interval = self.snapshotting_intervals.get(type(aggregate))
        if isinstance(aggregate, TreatmentCourse) and interval:
            start = max(0, aggregate.version - interval)
            events: list[Any] = list(self.events.get(aggregate_id, gt=start,
                                                     lte=aggregate.version))
            floor = min(e.at for e in events)
            # First in the body, so that `snapshot_times` reads it from the lead.
            rest = {k: v for k, v in snapshot.state.items() if k != "segment"}
            snapshot.state.clear()
            snapshot.state.update({"segment": [start, floor], **rest})
        assert self.snapshots is not None
        self.snapshots.put([snapshot])

    def construct_snapshot_store(self) -> SnapshotStore:
        """The library's snapshot store, ignoring any snapshot that is not intact. Its
        table is made on opening a store created before snapshots existed."""
        recorder: Any = self.factory.aggregate_recorder(purpose="snapshots")
        if hasattr(recorder, "create_table"):  # the SQL ones: IF NOT EXISTS
            recorder.create_table()
        return SnapshotStore(mapper=self.mapper, recorder=recorder)

    # -- the store's clinic settings -----------------------------------------------------
    def initialise(self, timezone: str | None = None) -> str:
        """Creates the clinic settings once; returns the zone (never changes it)."""
        settings = self._peek(ClinicSettings, CLINIC_ID)
        if settings is not None:
            if timezone is not None and timezone != settings.timezone:
                raise Rejected(Code.INVALID, f"timezone: the store's zone is "
                               f"{settings.timezone} and cannot change", "timezone")
            return str(settings.timezone)
        name = timezone or "UTC"
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise invalid("timezone", "is not an IANA time zone name") from None
        self.save(ClinicSettings.configure(recorded_at=self.clock.now(), timezone=name))
        return name

    @property
    def zone(self) -> ZoneInfo:
        if self._zone is None:
            settings = self._peek(ClinicSettings, CLINIC_ID)
            if settings is None:
                raise StoreUnavailable("the store holds no clinic settings (run init)")
            self._zone = ZoneInfo(settings.timezone)
        return self._zone

    def is_initialised(self) -> bool:
        return self._peek(ClinicSettings, CLINIC_ID) is not None

    # -- commands ----------------------------------------------------------------------
    def execute(self, raw: Any) -> Outcome:
        """Applies one command given as a JSON-like dict; raises `Rejected` if refused."""
        started = time.perf_counter()
        seen: list[str | None] = [None]
        try:
            if self._freshness is not None:
                self._freshness.check()
            outcome = self._decide(raw, seen)
            if outcome.command == "erase_patient":
                self._shred(outcome.subject)
        except Rejected as rejected:
            _log_result(raw, seen[0], rejected, time.perf_counter() - started)
            raise
        except (OperationalError, InterfaceError) as error:
            raise self._unavailable(raw, seen[0], error) from None
        _log_result(raw, seen[0], outcome, time.perf_counter() - started)
        return outcome

    @staticmethod
    def _unavailable(raw: Any, command_id: str | None, error: Exception) -> StoreUnavailable:
        """The server went away, or the file stayed locked past the timeout. Whether a
        commit under way landed is unknown; its command_id makes a retry safe."""
        name = raw.get("command") if isinstance(raw, dict) else None
        log.warning("command", command=name if name in COMMANDS else "?",
                    command_id=command_id, outcome="store_unavailable",
                    error=type(error).__name__)
        return StoreUnavailable(f"the store did not answer ({type(error).__name__}); retry "
                                "the command with the same command_id (it applies at most "
                                "once)")

    def execute_batch(self, raws: Sequence[Any], *,
                      stop_on_error: bool = False) -> list[Outcome | Rejected]:
        """Applies commands in order, each atomic, all recorded in one transaction.

        Each command is decided against the state its predecessors left (kept in memory
        until the batch is recorded) exactly as `execute` would decide it; a refused one
        records nothing. The events and receipts of the accepted ones are then written
        together: one commit for the batch instead of one per command. If the store
        refuses the batch (another writer changed one of its records meanwhile), none of
        it was recorded, and the commands are applied again one by one. Returns, per
        command applied (all of them, or up to the first refusal with `stop_on_error`),
        its `Outcome` or the `Rejected` that refused it. Log lines are written once the
        outcomes are final.
        """
        results: list[tuple[Any, str | None, Outcome | Rejected, float]] = []
        self._batch = _Batch()
        try:
            if self._freshness is not None:
                self._freshness.check()
            self._batch.known = recorded_originators(self.recorder, _receipt_ids(raws))
            for raw in raws:
                started = time.perf_counter()
                seen: list[str | None] = [None]
                result: Outcome | Rejected
                try:
                    result = self._decide(raw, seen)
                except Rejected as rejected:
                    result = rejected
                results.append((raw, seen[0], result, time.perf_counter() - started))
                if stop_on_error and isinstance(result, Rejected):
                    break
            batch, self._batch = self._batch, None
            if batch.events:
                processing = _Processing()
                processing.collect_events(*batch.events)
                try:
                    recordings = self._record(processing)
                except IntegrityError:
                    return self._one_by_one([raw for raw, *_ in results], stop_on_error)
                except (OperationalError, InterfaceError) as error:
                    raise self._unavailable(None, None, error) from None
                self._remember_saved(batch.aggregates.values(), recordings)
                processing.aggregates.update(batch.aggregates)  # which to snapshot
                self._take_snapshots(processing)
                self._notify(recordings)
        finally:
            self._batch = None
        # Keys are destroyed only once the erasures are recorded.
        for _, _, result, _ in results:
            if isinstance(result, Outcome) and result.command == "erase_patient":
                self._shred(result.subject)
        for raw, command_id, result, took in results:
            _log_result(raw, command_id, result, took)
        return [result for _, _, result, _ in results]

    def _one_by_one(self, raws: list[Any], stop_on_error: bool) -> list[Outcome | Rejected]:
        results: list[Outcome | Rejected] = []
        for raw in raws:
            try:
                results.append(self.execute(raw))
            except Rejected as rejected:
                results.append(rejected)
                if stop_on_error:
                    break
        return results

    def _decide(self, raw: Any, seen: list[str | None]) -> Outcome:
        """Decides a command; a command_id already recorded answers as it did then.

        One at a time, the receipt is looked up only when it can matter: when the
        command is refused (a retry usually is: the course has moved on), and when its
        save conflicts (the receipt is written in the same transaction as the events,
        so a retry that would be accepted again fails to save, and nothing of it is
        recorded). That saves a read of the store for every new command. In a batch
        the receipt is looked up first: a conflict there would send the whole batch
        back to one-by-one."""
        command_id = seen[0] = read_command_id(raw)
        name = raw.get("command")
        digest = body_digest(canonical_body(raw), self.keyring.master.receipts)
        if self._batch is not None and self._batch.may_know(command_uuid(command_id)):
            known = self._settle_known(command_id, name, digest)
            if known is not None:
                return known
        try:
            command = parse_command(raw)
            subject, version, aggregates = _HANDLERS[command.name](self, command)
        except Rejected:
            if self._batch is None:
                known = self._settle_known(command_id, name, digest)
                if known is not None:
                    return known
            raise
        return self._commit(command, digest, subject, version, aggregates)

    def _settle_known(self, command_id: str, name: str, digest: str) -> Outcome | None:
        receipt = self._peek(CommandReceipt, command_uuid(command_id))
        if receipt is None:
            return None
        if receipt.digest != digest:
            raise Rejected(Code.CONFLICTING_DUPLICATE, f"command_id {command_id!r} was "
                           "already applied with a different body", "command_id")
        return Outcome("duplicate", receipt.command, command_id, receipt.subject)

    def _commit(self, command: ParsedCommand, digest: str, subject: str, version: int | None,
                aggregates: list[Any]) -> Outcome:
        receipt = CommandReceipt.accept(recorded_at=self.clock.now(),
                                        command_id=command.command_id, command=command.name,
                                        digest=digest, subject=subject)
        if self._batch is not None:
            self._batch.hold(*aggregates, receipt)
            return Outcome("applied", command.name, command.command_id, subject, version)
        processing = _Processing()
        processing.collect_events(*aggregates, receipt)
        try:
            recordings = self._record(processing)
        except IntegrityError:
            # Another writer got there first: with this very command, or on this subject.
            known = self._settle_known(command.command_id, command.name, digest)
            if known is not None:
                return known
            raise Rejected(Code.CONFLICT, "a concurrent writer changed this record first; "
                           "read it again and retry") from None
        self._remember_saved(aggregates, recordings)
        self._take_snapshots(processing)
        self._notify(recordings)
        return Outcome("applied", command.name, command.command_id, subject, version)

    def _remember_saved(self, aggregates: Iterable[Any], recordings: list[Any]) -> None:
        """What this process just recorded goes in the cache (receipts excepted: they are
        looked up again only for a retried command)."""
        if self._freshness is not None:
            self._freshness.saved(
                [a for a in aggregates if not isinstance(a, CommandReceipt)],
                [r.notification.id for r in recordings])

    # -- loading -----------------------------------------------------------------------
    def _get(self, cls: type[Any], aggregate_id: UUID) -> Any:
        """An aggregate the command may change (a copy of the cached one), or None."""
        if self._batch is not None and aggregate_id in self._batch.aggregates:
            held = deepcopy(self._batch.aggregates[aggregate_id])
            return held if isinstance(held, cls) else None
        return self._load(cls, aggregate_id, copy=True)

    def _load(self, cls: type[Any], aggregate_id: UUID, *, copy: bool) -> Any:
        """The cached aggregate if nobody changed it since (`freshness`), else the
        library's load (fast-forwarded, or from the store); a deep copy if `copy`."""
        freshness = self._freshness
        mark = None if freshness is None else freshness.mark(aggregate_id)
        if mark is None and freshness is not None:
            try:
                cached = freshness.cached(aggregate_id)
            except KeyError:
                pass
            else:
                if isinstance(cached, cls):
                    return deepcopy(cached) if copy else cached
        try:
            aggregate: Any = self.repository.get(aggregate_id, projector_func=_project,
                                                 deepcopy_from_cache=copy)
        except AggregateNotFoundError:
            return None
        if mark and freshness is not None:
            freshness.refreshed(aggregate_id, mark)
        return aggregate if isinstance(aggregate, cls) else None

    def _peek(self, cls: type[Any], aggregate_id: UUID) -> Any:
        """An aggregate only read, never changed or saved: the cached one itself (no copy),
        or None."""
        if self._batch is not None and aggregate_id in self._batch.aggregates:
            held = self._batch.aggregates[aggregate_id]
            return held if isinstance(held, cls) else None
        return self._load(cls, aggregate_id, copy=False)

    def _practitioner(self, practitioner_id: str) -> PractitionerRecord | None:
        found: PractitionerRecord | None = self._get(PractitionerRecord,
                                                     practitioner_uuid(practitioner_id))
        return found

    def _patient(self, patient_ref: str) -> PatientRecord | None:
        found: PatientRecord | None = self._get(PatientRecord, patient_uuid(patient_ref))
        return found

    def _context(self, command: ParsedCommand, patient_ref: str) -> Context:
        practitioner: PractitionerRecord | None = self._peek(
            PractitionerRecord, practitioner_uuid(command.actor))
        patient: PatientRecord | None = self._peek(PatientRecord, patient_uuid(patient_ref))
        return Context(zone=self.zone, now=self.clock.now(),
                       practitioner=None if practitioner is None else practitioner.for_rules(),
                       erased=patient is not None and patient.erased,
                       command_id=command.command_id, at=command.at, actor=command.actor)

    @staticmethod
    def _check_version(command: ParsedCommand, current: int) -> None:
        if command.expected_version is not None and command.expected_version != current:
            raise Rejected(Code.CONFLICT, f"expected_version {command.expected_version} but "
                           f"the record is at version {current}", "expected_version")

    # -- handlers ----------------------------------------------------------------------
    def _register_practitioner(self, c: ParsedCommand) -> tuple[str, int | None, list[Any]]:
        f = c.fields
        existing = self._practitioner(f["practitioner_id"])
        self._check_version(c, existing.version if existing else 0)
        if existing is not None:
            raise Rejected(Code.ALREADY_EXISTS, f"practitioner {f['practitioner_id']!r} "
                           "is already registered", "practitioner_id")
        record = PractitionerRecord.register(recorded_at=self.clock.now(), at=c.at,
                                             actor=c.actor, command_id=c.command_id, **f)
        return f["practitioner_id"], record.version, [record]

    def _renew_license(self, c: ParsedCommand) -> tuple[str, int | None, list[Any]]:
        f = c.fields
        record = self._practitioner(f["practitioner_id"])
        self._check_version(c, record.version if record else 0)
        if record is None:
            raise Rejected(Code.NOT_FOUND, f"practitioner {f['practitioner_id']!r} is not "
                           "registered", "practitioner_id")
        record.renew_license(recorded_at=self.clock.now(), at=c.at, actor=c.actor,
                             command_id=c.command_id, license_number=f["license_number"],
                             license_expires_on=f["license_expires_on"])
        return f["practitioner_id"], record.version, [record]

    def _open_course(self, c: ParsedCommand) -> tuple[str, int | None, list[Any]]:
        f = c.fields
        existing = self._peek(TreatmentCourse, course_uuid(f["course_id"]))
        self._check_version(c, existing.version if existing else 0)
        if existing is not None:
            raise Rejected(Code.ALREADY_EXISTS, f"course {f['course_id']!r} already exists",
                           "course_id")
        protocol = self.catalogue.get(f["indication"])
        if protocol is None:
            raise invalid("indication", "has no protocol in this catalogue")
        patient = self._patient(f["patient_ref"])
        if patient is not None and patient.erased:
            raise Rejected(Code.PATIENT_ERASED, "this patient_ref was erased", "patient_ref")
        now = self.clock.now()
        ctx = Context(zone=self.zone, now=now, command_id=c.command_id, at=c.at,
                      actor=c.actor)
        course = TreatmentCourse.open(ctx, course_id=f["course_id"],
                                      patient_ref=f["patient_ref"], protocol=protocol,
                                      planned_sessions=f.get("planned_sessions"),
                                      patient=_jsonable(f.get("patient")))
        if patient is None:
            patient = PatientRecord.register(recorded_at=now, at=c.at, actor=c.actor,
                                             command_id=c.command_id,
                                             patient_ref=f["patient_ref"],
                                             course_id=f["course_id"])
        else:
            patient.add_course(recorded_at=now, at=c.at, actor=c.actor,
                               command_id=c.command_id, course_id=f["course_id"])
        return f["course_id"], course.version, [course, patient]

    def _course_command(self, c: ParsedCommand) -> tuple[str, int | None, list[Any]]:
        fields = dict(c.fields)
        course_id = fields.pop("course_id")
        course: TreatmentCourse | None = self._get(TreatmentCourse, course_uuid(course_id))
        self._check_version(c, course.version if course else 0)
        if course is None:
            raise Rejected(Code.NOT_FOUND, f"course {course_id!r} does not exist", "course_id")
        if c.name == "give_session":
            fields["products"] = [Product(**p) for p in fields["products"]]
        if c.name == "record_consultation":
            fields["screening"] = _jsonable(fields["screening"])
        if c.name == "schedule_session" and fields.get("practitioner_id") is not None \
                and self._peek(PractitionerRecord,
                               practitioner_uuid(fields["practitioner_id"])) is None:
            raise Rejected(Code.NOT_FOUND, f"practitioner {fields['practitioner_id']!r} is "
                           "not registered", "practitioner_id")
        ctx = self._context(c, course.state.patient_ref)
        getattr(course, c.name)(ctx, **fields)
        return course_id, course.version, [course]

    def _erase_patient(self, c: ParsedCommand) -> tuple[str, int | None, list[Any]]:
        f = c.fields
        patient = self._patient(f["patient_ref"])
        self._check_version(c, patient.version if patient else 0)
        if patient is None:
            raise Rejected(Code.NOT_FOUND, "no course was opened for this patient_ref",
                           "patient_ref")
        if patient.erased:
            raise Rejected(Code.PATIENT_ERASED, "this patient was already erased",
                           "patient_ref")
        patient.erase(recorded_at=self.clock.now(), at=c.at, actor=c.actor,
                      command_id=c.command_id, reason=f["reason"])
        return f["patient_ref"], None, [patient]

    def _shred(self, patient_ref: str) -> None:
        """Destroys the patient's data key once the erasure is recorded (again on a
        duplicate of the erase command, which completes an interrupted shredding)."""
        self.keyring.shred(patient_ref)
        self._forget_cached_aggregates()

    def _forget_cached_aggregates(self) -> None:
        """Empties the aggregate cache: the erased patient's courses may sit there with
        their personal data already decrypted (erasure is rare; the cache refills)."""
        if self._freshness is not None:
            self._freshness.forget_all()

    # -- one method per command (same names and fields as docs/reference.md) -----------
    def _call(self, command: str, fields: dict[str, Any]) -> Outcome:
        body: dict[str, Any] = {"command": command}
        for key, value in fields.items():
            if key == "self" or (value is None and key != "anaesthetic"):
                continue
            if key == "products":
                value = [p.as_dict() if isinstance(p, Product) else p for p in value]
            body[key] = value
        return self.execute(body)

    def register_practitioner(self, *, command_id: str, at: dt.datetime | str, actor: str,
                              practitioner_id: str, name: str, role: str, license_number: str,
                              license_expires_on: dt.date | str,
                              expected_version: int | None = None) -> Outcome:
        return self._call("register_practitioner", locals())

    def renew_license(self, *, command_id: str, at: dt.datetime | str, actor: str,
                      practitioner_id: str, license_number: str,
                      license_expires_on: dt.date | str,
                      expected_version: int | None = None) -> Outcome:
        return self._call("renew_license", locals())

    def open_course(self, *, command_id: str, at: dt.datetime | str, actor: str,
                    course_id: str, patient_ref: str, indication: str,
                    planned_sessions: int | None = None, patient: dict[str, Any] | None = None,
                    expected_version: int | None = None) -> Outcome:
        return self._call("open_course", locals())

    def record_consultation(self, *, command_id: str, at: dt.datetime | str, actor: str,
                            course_id: str, consent: bool, screening: dict[str, Any],
                            expected_version: int | None = None) -> Outcome:
        return self._call("record_consultation", locals())

    def override_contraindication(self, *, command_id: str, at: dt.datetime | str, actor: str,
                                  course_id: str, code: str, justification: str,
                                  expected_version: int | None = None) -> Outcome:
        return self._call("override_contraindication", locals())

    def schedule_session(self, *, command_id: str, at: dt.datetime | str, actor: str,
                         course_id: str, planned_at: dt.datetime | str,
                         session_no: int | None = None, practitioner_id: str | None = None,
                         spacing_override_reason: str | None = None,
                         expected_version: int | None = None) -> Outcome:
        return self._call("schedule_session", locals())

    def reschedule_session(self, *, command_id: str, at: dt.datetime | str, actor: str,
                           course_id: str, session_no: int, planned_at: dt.datetime | str,
                           reason: str, spacing_override_reason: str | None = None,
                           expected_version: int | None = None) -> Outcome:
        return self._call("reschedule_session", locals())

    def cancel_session(self, *, command_id: str, at: dt.datetime | str, actor: str,
                       course_id: str, session_no: int, reason: str,
                       expected_version: int | None = None) -> Outcome:
        return self._call("cancel_session", locals())

    def give_session(self, *, command_id: str, at: dt.datetime | str, actor: str,
                     course_id: str, products: list[dict[str, Any]] | list[Product],
                     areas: list[str], dose_ml: float, anaesthetic: str | None,
                     session_no: int | None = None, spacing_override_reason: str | None = None,
                     expected_version: int | None = None) -> Outcome:
        return self._call("give_session", locals())

    def report_reaction(self, *, command_id: str, at: dt.datetime | str, actor: str,
                        course_id: str, session_no: int, kind: str, severity: int,
                        notes: str | None = None,
                        expected_version: int | None = None) -> Outcome:
        return self._call("report_reaction", locals())

    def review_reaction(self, *, command_id: str, at: dt.datetime | str, actor: str,
                        course_id: str, session_no: int, decision: str,
                        notes: str | None = None,
                        expected_version: int | None = None) -> Outcome:
        return self._call("review_reaction", locals())

    def adjust_interval(self, *, command_id: str, at: dt.datetime | str, actor: str,
                        course_id: str, min_days: int, target_days: int, max_days: int,
                        reason: str, expected_version: int | None = None) -> Outcome:
        return self._call("adjust_interval", locals())

    def extend_plan(self, *, command_id: str, at: dt.datetime | str, actor: str,
                    course_id: str, planned_sessions: int, reason: str,
                    expected_version: int | None = None) -> Outcome:
        return self._call("extend_plan", locals())

    def pause_course(self, *, command_id: str, at: dt.datetime | str, actor: str,
                     course_id: str, reason: str,
                     expected_version: int | None = None) -> Outcome:
        return self._call("pause_course", locals())

    def resume_course(self, *, command_id: str, at: dt.datetime | str, actor: str,
                      course_id: str, reason: str | None = None,
                      expected_version: int | None = None) -> Outcome:
        return self._call("resume_course", locals())

    def complete_course(self, *, command_id: str, at: dt.datetime | str, actor: str,
                        course_id: str, expected_version: int | None = None) -> Outcome:
        return self._call("complete_course", locals())

    def discontinue_course(self, *, command_id: str, at: dt.datetime | str, actor: str,
                           course_id: str, reason: str,
                           expected_version: int | None = None) -> Outcome:
        return self._call("discontinue_course", locals())

    def erase_patient(self, *, command_id: str, at: dt.datetime | str, actor: str,
                      patient_ref: str, reason: str,
                      expected_version: int | None = None) -> Outcome:
        return self._call("erase_patient", locals())

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
        """A course's state (docs/reference.md, "Course"), now or at any past moment."""
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


class _Processing(ProcessingEvent[UUID]):
    """The library's unit of recording, collecting from our own aggregates without its
    runtime checks against `Protocol`s (two `isinstance` per aggregate that inspect the
    protocols' members: about a tenth of a command's CPU). What `Application.save` does
    with it is done in `_commit`: record, remember, snapshot, notify."""

    def collect_events(self, *objs: Any, **kwargs: Any) -> None:
        for obj in objs:
            if isinstance(obj, BaseAggregate):
                self.events.extend(obj.collect_events())
                self.aggregates[obj.id] = obj
            elif obj is not None:
                self.events.append(obj)
        self.saved_kwargs.update(kwargs)


class _Batch:
    """Commands decided but not yet recorded: their events in order, and the aggregates
    they left (what the next command of the batch must see)."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.aggregates: dict[UUID, Any] = {}
        self.known: set[UUID] | None = None
        """The batch's receipt ids already in the store when it began (None: unknown)."""

    def may_know(self, receipt_id: UUID) -> bool:
        """Whether the receipt may exist: recorded before the batch, or earlier in it.
        One recorded by another writer since is found when the batch is saved (the
        save fails, and the lines are applied again one by one)."""
        return (self.known is None or receipt_id in self.known
                or receipt_id in self.aggregates)

    def hold(self, *aggregates: Any) -> None:
        for aggregate in aggregates:
            self.events.extend(aggregate.collect_events())
            self.aggregates[aggregate.id] = aggregate


def _receipt_ids(raws: Sequence[Any]) -> list[UUID]:
    ids = []
    for raw in raws:
        try:
            ids.append(command_uuid(read_command_id(raw)))
        except Rejected:
            continue
    return ids


def _log_result(raw: Any, command_id: str | None, result: Outcome | Rejected,
                seconds: float) -> None:
    """The one log line per command: names, ids, outcome, code, duration; never a body."""
    name = raw.get("command") if isinstance(raw, dict) else None
    name = name if isinstance(name, str) and name in COMMANDS else "?"
    duration_ms = round(seconds * 1000, 3)
    if isinstance(result, Rejected):
        log.info("command", command=name, command_id=command_id, outcome="rejected",
                 code=str(result.code), field=result.field, duration_ms=duration_ms)
        return
    log.info("command", command=name, command_id=command_id, outcome=result.status,
             subject=result.subject if name != "erase_patient" else None,
             version=result.version, duration_ms=duration_ms)


_HANDLERS: dict[str, Handler] = {
    "register_practitioner": Coursebook._register_practitioner,
    "renew_license": Coursebook._renew_license,
    "open_course": Coursebook._open_course,
    "erase_patient": Coursebook._erase_patient,
}
_HANDLERS.update({name: Coursebook._course_command for name in COMMANDS
                  if name not in _HANDLERS})


def _master_key(env: Mapping[str, str] | None) -> MasterKey:
    """The master key for an application built from an environment alone (as the
    library's runners do): `COURSEBOOK_MASTER_KEY`, else the target's key file."""
    settings = {**os.environ, **(env or {})}
    module = settings.get("PERSISTENCE_MODULE") or "eventsourcing.popo"
    target: str | None = None
    if module == "eventsourcing.sqlite" and settings.get("SQLITE_DBNAME"):
        target = settings["SQLITE_DBNAME"]
    elif module.partition(":")[0] in {"eventsourcing.postgres",
                                      "coursebook.adapters.pg_schema"}:
        target = (f"postgresql://{settings.get('POSTGRES_HOST') or '127.0.0.1'}:"
                  f"{settings.get('POSTGRES_PORT') or 5432}/"
                  f"{settings.get('POSTGRES_DBNAME') or 'postgres'}")
    found = configured_master_key(target, settings)
    if found is not None:
        return found
    if target is not None:
        raise missing_key(target)
    if module == "eventsourcing.popo":
        return MasterKey.ephemeral()
    raise StoreUnavailable(f"no master key: set {MASTER_KEY_ENV}")


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's `project_aggregate` without its per-event runtime check against a
    `Protocol` (an `isinstance` that inspects the protocol's members every time: about
    half the cost of loading an aggregate). Our events are all `Aggregate` events."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


Coursebook.snapshotting_projectors = {TreatmentCourse: _project}


def select_events(events: Iterable[Any], *, version: int | None = None,
                  as_of: dt.datetime | None = None,
                  known_at: dt.datetime | None = None) -> list[Any]:
    """The events a time-travel question sees, in recording order: the first `version`,
    of those the ones whose `at` <= `as_of`, of those the ones recorded by `known_at`."""
    selected = list(events)
    if version is not None:
        selected = selected[:version]
    if as_of is not None:
        selected = [e for e in selected if e.at <= as_of]
    if known_at is not None:
        selected = [e for e in selected if e.timestamp <= known_at]
    return selected


def _jsonable(value: Any) -> Any:
    """Typed command fields back to JSON-like data, for personal payloads."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
