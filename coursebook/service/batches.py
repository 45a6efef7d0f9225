"""Many commands in one transaction, each still atomic: `execute_batch`, and
`import_lines` for JSON Lines (what `coursebook import` reads).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any
from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
)

from coursebook.adapters.storage.bulk_reads import recorded_originators
from coursebook.domain.ids import (
    command_uuid,
    course_uuid,
    patient_uuid,
    practitioner_uuid,
)
from coursebook.domain.values import Personal
from coursebook.errors import Rejected, StoreUnavailable
from coursebook.logs import get_logger
from coursebook.service.commanding import (
    Commanding,
    Outcome,
    PendingBatch,
    Processing,
    log_result,
)
from coursebook.service.importing import (
    ImportReport,
    UnusableInput,
    batch_size,
    decode_line,
    numbered_lines,
)

__all__ = ["Batching"]

log = get_logger("coursebook")


class Batching(Commanding):
    """Commands in batches."""

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
        self._batch = PendingBatch()
        try:
            # Receipts (and which records exist) first, then the cache: whatever was
            # applied before they were read is in the state the lines are decided against.
            looked = frozenset(_named_ids(raws))
            self._batch.known = recorded_originators(self.recorder, list(looked))
            self._batch.looked = looked
            if self._freshness is not None:
                self._freshness.check()
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
                processing = Processing()
                processing.collect_events(*batch.events)
                try:
                    self.keyring.make_keys(_patients_encrypted(batch.events))
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
        outcomes = Counter("rejected" if isinstance(result, Rejected) else result.status
                           for _, _, result, _ in results)
        for raw, command_id, result, took in results:
            log_result(raw, command_id, result, took, in_batch=True)
        log.info("batch", commands=len(results), **dict(sorted(outcomes.items())),
                 duration_ms=round(sum(took for *_, took in results) * 1000, 3))
        return [result for _, _, result, _ in results]

    def import_lines(self, data: bytes | str | Iterable[str] | IO[bytes], *,
                     stop_on_error: bool = False, batch: int | None = None,
                     progress: Callable[[int], None] | None = None) -> ImportReport:
        """Applies JSON Lines commands (a file's bytes or text, an iterable of lines, or a
        binary file, read line by line) in order, each atomically, `batch` lines per
        transaction; returns the report. A line longer than 4 MiB is rejected `INVALID`;
        input with no line end in 256 MiB raises `UnusableInput` once the lines before it
        are applied. `progress(line)` is called after each batch with the number of the
        last line it settled.

        A store that stops answering raises `StoreUnavailable` naming the lines of the
        batch under way; the lines before them are recorded, and running the same
        import again counts those as duplicates."""
        size = batch or batch_size()
        report = ImportReport()
        pending: list[tuple[int, Any]] = []

        def settle() -> bool:
            """Applies the pending lines; False once a refusal must stop the import."""
            if not pending:
                return True
            try:
                results = self.execute_batch([raw for _, raw in pending],
                                             stop_on_error=stop_on_error)
            except StoreUnavailable as error:
                raise StoreUnavailable(
                    f"lines {pending[0][0]}-{pending[-1][0]}: {error} (applied before "
                    f"them: {report.applied}; run the import again: lines already applied "
                    "count as duplicates)") from None
            clean = True
            for (number, raw), result in zip(pending, results, strict=False):
                clean = report.count(number, raw, result) and clean
            if progress is not None:
                progress(pending[-1][0])
            pending.clear()
            return clean or not stop_on_error

        lines = numbered_lines(data)
        while True:
            try:
                number, line = next(lines)
            except StopIteration:
                break
            except UnusableInput as error:  # what came before it is applied, then say so
                settle()
                raise UnusableInput(f"{error} (import stopped: applied {report.applied}, "
                                    f"duplicates {report.duplicates}, rejected "
                                    f"{len(report.rejected)} before it)") from None
            try:
                raw = decode_line(line)
            except Rejected as error:
                if not settle():
                    return report
                report.count(number, None, error)
                if stop_on_error:
                    return report
                continue
            pending.append((number, raw))
            if len(pending) >= size and not settle():
                return report
        settle()
        return report

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


def _patients_encrypted(events: Sequence[Any]) -> Iterator[str]:
    """The patients whose personal data the events hold (each needs a data key)."""
    for event in events:
        for value in vars(event).values():
            if isinstance(value, Personal) and value.data is not None:
                yield value.patient_ref


def _named_ids(raws: Sequence[Any]) -> Iterator[UUID]:
    """The aggregates the lines name, as they stand (a line refused before they matter
    costs a lookup, not a check of every line): each command_id's receipt, and the
    course, patient and practitioners (actor included) it names."""
    for raw in raws:
        if not isinstance(raw, dict):
            continue
        for field, to_id in _NAMED:
            value = raw.get(field)
            if isinstance(value, str) and len(value) <= _ID_MAX:
                yield to_id(value)


_ID_MAX = 128
_NAMED = (("command_id", command_uuid), ("course_id", course_uuid),
          ("patient_ref", patient_uuid), ("actor", practitioner_uuid),
          ("practitioner_id", practitioner_uuid))
