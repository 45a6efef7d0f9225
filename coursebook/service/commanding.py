"""Deciding and recording one command: validate, load, decide (domain), save atomically
with its receipt, answer a retried `command_id` as it was answered before.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from copy import deepcopy
from typing import Any
from uuid import UUID

import attrs
from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
)

from coursebook.domain.commands import (
    COMMANDS,
    ParsedCommand,
    canonical_body,
    invalid,
    parse_command,
    read_command_id,
)
from coursebook.domain.course import Context, TreatmentCourse
from coursebook.domain.ids import (
    command_uuid,
    course_uuid,
    patient_uuid,
    practitioner_uuid,
)
from coursebook.domain.patient import PatientRecord
from coursebook.domain.practitioner import PractitionerRecord
from coursebook.domain.store_records import CommandReceipt, body_digest
from coursebook.domain.values import Product
from coursebook.errors import Code, Rejected, StoreUnavailable
from coursebook.logs import get_logger
from coursebook.service.wiring import Wiring, project_aggregate

__all__ = ["Commanding", "Outcome", "PendingBatch", "Processing", "log_result"]

log = get_logger("coursebook")


@attrs.frozen
class Outcome:
    """What became of an accepted command."""

    status: str  # "applied" | "duplicate"
    command: str
    command_id: str
    subject: str
    version: int | None = None


Handler = Callable[["Commanding", ParsedCommand], tuple[str, int | None, list[Any]]]


class Commanding(Wiring):
    """Commands one at a time: `execute(dict)` and what it needs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._batch: PendingBatch | None = None
        super().__init__(*args, **kwargs)

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
            log_result(raw, seen[0], rejected, time.perf_counter() - started)
            raise
        except (OperationalError, InterfaceError) as error:
            raise self._unavailable(raw, seen[0], error) from None
        log_result(raw, seen[0], outcome, time.perf_counter() - started)
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

    def _decide(self, raw: Any, seen: list[str | None], *, look_first: bool = False,
                ) -> Outcome:
        """Decides a command; a command_id already recorded answers as it did then.

        The receipt of the command_id (what was applied or refused under it) is looked
        up only when it can matter. One at a time: when the command is refused (a retry
        of an applied command usually is: the course has moved on; and a refusal is
        recorded under the receipt), and when its save conflicts (the receipt is written
        in the same transaction as the events, so a command whose id holds anything
        fails to save, and nothing of it is recorded: then it is decided again against
        its receipt). That saves a read of the store for every new command. In a batch
        the receipt is looked up first when the store held it when the batch began; one
        recorded by another writer since makes the batch's save fail (the lines are then
        applied one by one).

        A refusal is recorded under the command_id (`CommandReceipt.Refused`) unless it
        is `CONFLICT`, which a retry may well overcome. Before a refusal is given or
        recorded, the receipt decides: a command another writer applied first, even an
        instant earlier, is a duplicate (or `CONFLICTING_DUPLICATE`), never refused for
        a rule its own application broke."""
        command_id = seen[0] = read_command_id(raw)
        name = raw.get("command")
        digest = body_digest(canonical_body(raw), self.keyring.master.receipts)
        receipt: CommandReceipt | None = None
        looked = False
        if look_first or (self._batch is not None
                          and self._batch.may_know(command_uuid(command_id))):
            receipt, looked = self._receipt(command_id), True
            known = _settle_known(receipt, command_id, digest)
            if known is not None:
                return known
        try:
            command = parse_command(raw)
            subject, version, aggregates = _HANDLERS[command.name](self, command)
        except Rejected as rejected:
            if not looked and (self._batch is None or rejected.code is Code.CONFLICT):
                receipt, looked = self._receipt(command_id), True
                known = _settle_known(receipt, command_id, digest)
                if known is not None:
                    return known
            if rejected.code is not Code.CONFLICT:
                known = self._remember(receipt, command_id, name, digest, rejected)
                if known is not None:
                    return known
            raise
        return self._commit(command, digest, subject, version, aggregates, receipt,
                            raw=raw, seen=seen, retried=look_first)

    def _receipt(self, command_id: str) -> CommandReceipt | None:
        """The receipt of `command_id` as the store holds it now (or as the batch left it):
        a copy the caller may change."""
        receipt_id = command_uuid(command_id)
        if self._batch is not None and receipt_id in self._batch.aggregates:
            held = self._batch.aggregates[receipt_id]
            return held if isinstance(held, CommandReceipt) else None
        try:
            found = self.repository.get(receipt_id, projector_func=project_aggregate,
                                        deepcopy_from_cache=True)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, CommandReceipt) else None

    def _remember(self, receipt: CommandReceipt | None, command_id: str, name: Any,
                  digest: str, rejected: Rejected) -> Outcome | None:
        """Records `rejected` under `command_id`. Should another writer record something
        under it first, its receipt decides: the Outcome returned (a duplicate), or the
        `Rejected` raised (its refusal, or `CONFLICTING_DUPLICATE`); None once recorded."""
        command = name if isinstance(name, str) and name in COMMANDS else None
        for _ in range(3):
            now = self.clock.now()
            if receipt is None:
                receipt = CommandReceipt.refuse(
                    recorded_at=now, command_id=command_id, command=command, digest=digest,
                    code=str(rejected.code), message=rejected.message, field=rejected.field)
            else:
                receipt.refuse_another(
                    recorded_at=now, command=command, digest=digest, code=str(rejected.code),
                    message=rejected.message, field=rejected.field)
            if self._batch is not None:
                self._batch.hold(receipt)
                return None
            processing = Processing()
            processing.collect_events(receipt)
            try:
                recordings = self._record(processing)
            except IntegrityError:
                receipt = self._receipt(command_id)
                known = _settle_known(receipt, command_id, digest)
                if known is not None:
                    return known
                continue
            self._remember_saved((), recordings)
            self._notify(recordings)
            return None
        raise Rejected(Code.CONFLICT, "concurrent writers kept recording under this "
                       "command_id; retry it", "command_id")

    def _commit(self, command: ParsedCommand, digest: str, subject: str, version: int | None,
                aggregates: list[Any], receipt: CommandReceipt | None, *, raw: Any,
                seen: list[str | None], retried: bool) -> Outcome:
        now = self.clock.now()
        if receipt is None:
            receipt = CommandReceipt.accept(recorded_at=now, command_id=command.command_id,
                                            command=command.name, digest=digest,
                                            subject=subject)
        else:
            receipt.accept_another(recorded_at=now, command=command.name, digest=digest,
                                   subject=subject)
        if self._batch is not None:
            self._batch.hold(*aggregates, receipt)
            return Outcome("applied", command.name, command.command_id, subject, version)
        processing = Processing()
        processing.collect_events(*aggregates, receipt)
        try:
            recordings = self._record(processing)
        except IntegrityError:
            # Another writer got there first: with this very command, or on this subject;
            # or the command_id holds refusals (of this body: refused again; of others:
            # decided again, against its receipt).
            found = self._receipt(command.command_id)
            known = _settle_known(found, command.command_id, digest)
            if known is not None:
                return known
            if found is not None and not retried:
                if self._freshness is not None:
                    self._freshness.check()
                return self._decide(raw, seen, look_first=True)
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
        """An aggregate the command may change (a copy of the cached one), or None. A
        course a batch holds is its own copy already, and a course command refuses
        before it records its one event: it is used as it is."""
        if self._batch is not None and aggregate_id in self._batch.aggregates:
            held = self._batch.aggregates[aggregate_id]
            if not isinstance(held, TreatmentCourse):
                held = deepcopy(held)
            return held if isinstance(held, cls) else None
        if self._batch is not None and not self._batch.may_exist(aggregate_id):
            return None
        return self._load(cls, aggregate_id, copy=True)

    def _peek(self, cls: type[Any], aggregate_id: UUID) -> Any:
        """An aggregate only read, never changed or saved: the cached one itself (no copy),
        or None."""
        if self._batch is not None and aggregate_id in self._batch.aggregates:
            held = self._batch.aggregates[aggregate_id]
            return held if isinstance(held, cls) else None
        if self._batch is not None and not self._batch.may_exist(aggregate_id):
            return None
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
        catalogue = self.catalogue_in_force()
        protocol = catalogue.get(f["indication"])
        if protocol is None:
            raise invalid("indication", f"the catalogue in force ({catalogue.ref}) has no "
                          "protocol for it")
        patient = self._patient(f["patient_ref"])
        if patient is not None and patient.erased:
            raise Rejected(Code.PATIENT_ERASED, "this patient_ref was erased", "patient_ref")
        now = self.clock.now()
        ctx = Context(zone=self.zone, now=now, command_id=c.command_id, at=c.at,
                      actor=c.actor)
        course = TreatmentCourse.open(ctx, course_id=f["course_id"],
                                      patient_ref=f["patient_ref"], protocol=protocol,
                                      planned_sessions=f.get("planned_sessions"),
                                      patient=_jsonable(f.get("patient")),
                                      catalogue=catalogue.identity(),
                                      safety=catalogue.content["safety"])
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
        duplicate of the erase command, which completes an interrupted shredding). When
        old copies of the key cannot be scrubbed from the store's files yet, the erasure
        stays pending (`key_status`), and the next write completes it."""
        pending = self.keyring.shred(patient_ref, self.clock.now().isoformat())
        self._forget_cached_aggregates()
        if pending is not None:
            self._erasures_pending = True
            log.warning("erasure", outcome="pending")

    def _forget_cached_aggregates(self) -> None:
        """Empties the aggregate cache: the erased patient's courses may sit there with
        their personal data already decrypted (erasure is rare; the cache refills)."""
        if self._freshness is not None:
            self._freshness.forget_all()


class Processing(ProcessingEvent[UUID]):
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


def _settle_known(receipt: CommandReceipt | None, command_id: str,
                  digest: str) -> Outcome | None:
    """What the receipt of `command_id` says of a body with `digest`: applied under it (a
    duplicate: the Outcome), another body applied (`CONFLICTING_DUPLICATE`), this body
    refused before (that refusal again, raised), or nothing (None: decide afresh)."""
    if receipt is None:
        return None
    if receipt.applied:
        if receipt.digest != digest:
            raise Rejected(Code.CONFLICTING_DUPLICATE, f"command_id {command_id!r} was "
                           "already applied with a different body", "command_id")
        assert receipt.command is not None
        assert receipt.subject is not None
        return Outcome("duplicate", receipt.command, command_id, receipt.subject)
    remembered = receipt.refusals.get(digest)
    if remembered is not None:
        raise Rejected(Code(remembered.code), remembered.message, remembered.field)
    return None


def log_result(raw: Any, command_id: str | None, result: Outcome | Rejected,
                seconds: float, *, in_batch: bool = False) -> None:
    """The one log line per command: names, ids, outcome, code, duration; never a body.
    In a batch (`in_batch`), only a rejected command is logged at info level, the others
    at debug: the batch logs its own line."""
    name = raw.get("command") if isinstance(raw, dict) else None
    name = name if isinstance(name, str) and name in COMMANDS else "?"
    duration_ms = round(seconds * 1000, 3)
    if isinstance(result, Rejected):
        log.info("command", command=name, command_id=command_id, outcome="rejected",
                 code=str(result.code), field=result.field, duration_ms=duration_ms)
        return
    (log.debug if in_batch else log.info)(
        "command", command=name, command_id=command_id, outcome=result.status,
        subject=result.subject if name != "erase_patient" else None,
        version=result.version, duration_ms=duration_ms)


_HANDLERS: dict[str, Handler] = {
    "register_practitioner": Commanding._register_practitioner,
    "renew_license": Commanding._renew_license,
    "open_course": Commanding._open_course,
    "erase_patient": Commanding._erase_patient,
}
_HANDLERS.update({name: Commanding._course_command for name in COMMANDS
                  if name not in _HANDLERS})


class PendingBatch:
    """Commands decided but not yet recorded: their events in order, and the aggregates
    they left (what the next command of the batch must see)."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.aggregates: dict[UUID, Any] = {}
        self.known: set[UUID] | None = None
        """The batch's receipt ids (and any of `looked`) already in the store when it
        began (None: unknown)."""
        self.looked: frozenset[UUID] = frozenset()
        """Other aggregates `known` answers for: the courses, patients and practitioners
        an import batch's lines name, asked about together with their receipts."""

    def may_know(self, receipt_id: UUID) -> bool:
        """Whether the receipt may exist: recorded before the batch, or earlier in it.
        One recorded by another writer since is found when the batch is saved (the
        save fails, and the lines are applied again one by one)."""
        return (self.known is None or receipt_id in self.known
                or receipt_id in self.aggregates)

    def may_exist(self, aggregate_id: UUID) -> bool:
        """Whether a record may exist: not among those asked about, or found, or made
        earlier in the batch. One another writer creates meanwhile makes the batch's
        save fail if the batch creates it too; a command only naming it (a course opened
        meanwhile) is decided as it would have been an instant earlier."""
        return (self.known is None or aggregate_id not in self.looked
                or aggregate_id in self.known or aggregate_id in self.aggregates)

    def hold(self, *aggregates: Any) -> None:
        for aggregate in aggregates:
            self.events.extend(aggregate.collect_events())
            self.aggregates[aggregate.id] = aggregate



def _jsonable(value: Any) -> Any:
    """Typed command fields back to JSON-like data, for personal payloads."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
