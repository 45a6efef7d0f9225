"""Group commit: commands that many threads send to one instance at the same moment are
decided one by one and recorded in one transaction.

A threaded host may share one instance among the threads that send commands. The first
caller to find no group under way leads: it takes the commands waiting (up to
`GROUP_LIMIT`), decides each against the state its predecessors in the group left, as
`execute` alone would, writes the events and receipts of all of them in one
transaction, seals them and brings the views up to them once, then hands every caller
its own outcome. The others wait for it; while it writes, the next group gathers. A
caller alone goes straight through the one-command path: nothing is waited for, no
window is slept through.

Each command stays atomic and idempotent. One that is refused, or fails in an
unexpected way, adds to the group only what it would record alone (a refusal's receipt,
or nothing), and the state its successors are decided against is put back as it was
before it (a savepoint kept in memory). Should the store refuse the group's transaction
(another writer recorded on one of its records, or under one of its command ids, since
the group read them), nothing of the group is recorded and its commands are applied
again one by one, each in its own transaction, so a conflict never changes a
neighbour's outcome. The commit is the store's own, at its own durability.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError

from coursebook.adapters.storage.bulk_reads import recorded_originators
from coursebook.domain.commands import read_command_id
from coursebook.domain.ids import command_uuid
from coursebook.errors import Rejected
from coursebook.logs import get_logger
from coursebook.service.commanding import (
    Commanding,
    Outcome,
    PendingBatch,
    Processing,
    log_result,
)

__all__ = ["GROUP_LIMIT", "GroupCommitting"]

log = get_logger("coursebook")

GROUP_LIMIT = 64
"""Commands one leader decides and records at most in one transaction."""

_UNAVAILABLE = (OperationalError, InterfaceError)


class _Call:
    """One caller's command, and what became of it."""

    __slots__ = ("command_id", "done", "error", "leads", "outcome", "raw", "started",
                 "wake")

    def __init__(self, raw: Any, lock: Any) -> None:
        self.raw = raw
        self.wake = threading.Condition(lock)
        self.leads = False
        """Handed the lead of the next group by the leader before it."""
        self.started = time.perf_counter()
        self.command_id: str | None = None
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self.done = False

    def result(self) -> Outcome:
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


class GroupCommitting(Commanding):
    """`execute` safe from many threads on one instance, their commands grouped."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._group_turn = threading.Lock()
        self._group_waiting: list[_Call] = []
        self._group_leading = False
        self._group_last = 1
        super().__init__(*args, **kwargs)

    def execute(self, raw: Any) -> Outcome:
        """Applies one command given as a JSON-like dict; raises `Rejected` if refused.
        May be called from many threads at once: commands arriving together are
        recorded together (`group_commit.py`), each as if it were alone."""
        turn = self._group_turn
        call = _Call(raw, turn)
        with turn:
            self._group_waiting.append(call)
            if self._group_leading:
                while not (call.done or call.leads):
                    call.wake.wait()
                if call.done:
                    return call.result()
            self._group_leading = True
        try:
            if self._group_last > 1:
                # Others were sending commands a moment ago: let those just answered
                # send their next one into this group (the GIL to them, once).
                time.sleep(0)
            while not call.done:
                with turn:
                    group = self._group_waiting[:GROUP_LIMIT]
                    del self._group_waiting[:GROUP_LIMIT]
                self._group_last = len(group)
                try:
                    self._run(group)
                finally:
                    with turn:
                        for settled in group:
                            settled.wake.notify()
        finally:
            with turn:
                if self._group_waiting:  # the next group's leader: the longest waiting
                    successor = self._group_waiting[0]
                    successor.leads = True
                    successor.wake.notify()
                else:
                    self._group_leading = False
        return call.result()

    def _run(self, group: list[_Call]) -> None:
        """Settles every call of `group`; whatever escapes is given to the calls left."""
        try:
            if len(group) == 1:
                self._alone(group[0])
            else:
                self._together(group)
        except BaseException as error:
            for call in group:
                if not call.done:
                    call.error, call.done = error, True
            raise

    def _alone(self, call: _Call) -> None:
        """The one-command path, exactly as without grouping (it logs its own line)."""
        try:
            call.outcome = super().execute(call.raw)
        except Exception as error:  # the caller's to see, raised in its own thread
            call.error = error
        call.done = True

    def _together(self, group: list[_Call]) -> None:
        batch = self._batch = PendingBatch()
        try:
            try:
                # Receipts first, then the cache: whatever was applied before the
                # receipts were read is in the state the commands are decided against.
                batch.known = recorded_originators(self.recorder, _receipt_ids(group))
                if self._freshness is not None:
                    self._freshness.check()
            except _UNAVAILABLE as error:
                for call in group:
                    self._unavailable_call(call, error)
                return
            for call in group:
                self._decide_in(batch, call)
        finally:
            self._batch = None
        if batch.events and not self._write(batch, group):
            return
        for call in group:
            if call.outcome is not None and call.outcome.command == "erase_patient":
                try:
                    self._shred(call.outcome.subject)
                except _UNAVAILABLE as error:
                    self._unavailable_call(call, error)
                    continue
        log.debug("group", commands=len(group))
        now = time.perf_counter()
        for call in group:
            if not call.done:
                result = call.outcome if call.error is None else call.error
                if isinstance(result, Outcome | Rejected):
                    log_result(call.raw, call.command_id, result, now - call.started)
                call.done = True

    def _decide_in(self, batch: PendingBatch, call: _Call) -> None:
        """Decides one command of the group; on anything but a refusal, the group's
        state is put back as it was before it."""
        events, aggregates = len(batch.events), dict(batch.aggregates)
        seen: list[str | None] = [None]
        try:
            call.outcome = self._decide(call.raw, seen)
        except Rejected as rejected:
            call.error = rejected
        except Exception as error:
            del batch.events[events:]
            batch.aggregates.clear()
            batch.aggregates.update(aggregates)
            call.command_id = seen[0]
            if isinstance(error, _UNAVAILABLE):
                self._unavailable_call(call, error)
            else:
                call.error, call.done = error, True
            return
        call.command_id = seen[0]

    def _write(self, batch: PendingBatch, group: list[_Call]) -> bool:
        """Records the group in one transaction, seals it and brings the views up to it;
        False when its calls were settled otherwise (one by one, or unavailable)."""
        processing = Processing()
        processing.collect_events(*batch.events)
        try:
            recordings = self._record(processing)
        except _UNAVAILABLE as error:
            # Whether it landed is unknown: every command of the group is to be retried
            # (one that only repeated an earlier one of the group, too).
            for call in group:
                if not call.done:
                    self._unavailable_call(call, error)
            return True
        except Exception as error:
            # Nothing of the group was recorded (a conflict with another writer, or an
            # event that could not be stored): each again on its own.
            log.info("group_redone", commands=len(group), cause=type(error).__name__)
            for call in group:
                if not call.done:
                    call.outcome = call.error = None
                    self._alone(call)
            return False
        self._remember_saved(batch.aggregates.values(), recordings)
        processing.aggregates.update(batch.aggregates)  # which to snapshot
        try:
            self._take_snapshots(processing)
            self._notify(recordings)
        except _UNAVAILABLE as error:  # recorded; a retry of each is a duplicate
            for call in group:
                if not call.done:
                    self._unavailable_call(call, error)
        return True

    def _unavailable_call(self, call: _Call, error: Exception) -> None:
        call.outcome = None
        call.error = self._unavailable(call.raw, call.command_id, error)
        call.done = True


def _receipt_ids(group: Sequence[_Call]) -> list[Any]:
    ids = []
    for call in group:
        try:
            ids.append(command_uuid(read_command_id(call.raw)))
        except Rejected:
            continue
    return ids

