"""The application service: `Coursebook`, the one object a host holds.

It is an eventsourcing `Application` (`wiring.py`) that decides commands one at a time
(`commanding.py`), grouped when threads send them at once (`group_commit.py`), or in
batches (`batches.py`, `importing.py`), offers one method per
command (`command_methods.py`) and answers questions (`queries.py`).

Every accepted write, whatever the entry point, is sealed into the tamper-evident chain
and reflected in the calendar and audit views before the call returns. A host that runs
a worker following the log (`coursebook projections run`) opens its writers with
`views="worker"`: the views are then the worker's job (queries still catch them up
first), and sealing still happens here.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import Any, Literal

from eventsourcing.persistence import InterfaceError, OperationalError

from coursebook.adapters.storage.integrity import catch_up as seal_new_events
from coursebook.adapters.storage.keys import MasterKey
from coursebook.clock import Clock
from coursebook.domain.course import TreatmentCourse
from coursebook.domain.protocols import Catalogue
from coursebook.errors import Tampered
from coursebook.logs import get_logger
from coursebook.service.batches import Batching
from coursebook.service.command_methods import CommandMethods
from coursebook.service.commanding import Outcome
from coursebook.service.group_commit import GroupCommitting
from coursebook.service.queries import Queries
from coursebook.service.wiring import project_aggregate

__all__ = ["Coursebook", "Outcome", "ViewsFollow"]

log = get_logger("coursebook")

ViewsFollow = Literal["inline", "worker"]
SEAL_ATTEMPTS = 20
"""Catch-ups of the seal chain a write tries before leaving its sealing to the next."""
VIEWS_ENV = "COURSEBOOK_VIEWS"


class Coursebook(CommandMethods, GroupCommitting, Batching, Queries):
    """Treatment courses, their rules, and the questions a clinic and a reviewer ask."""

    name = "coursebook"

    def __init__(self, env: Mapping[str, str] | None = None, *, clock: Clock | None = None,
                 catalogue: Catalogue | None = None, master_key: MasterKey | None = None,
                 views: ViewsFollow | None = None) -> None:
        """`views`: "inline" (the default) keeps the calendar and audit views current
        after every write; "worker" leaves that to a worker process (also set by
        `COURSEBOOK_VIEWS=worker` in `env`)."""
        super().__init__(env, clock=clock, catalogue=catalogue, master_key=master_key)
        chosen = views or self.env.get(VIEWS_ENV) or "inline"
        if chosen not in ("inline", "worker"):
            raise ValueError(f"views must be 'inline' or 'worker', not {chosen!r}")
        self.views: ViewsFollow = "worker" if chosen == "worker" else "inline"

    # -- stored formats (docs/schema-evolution.md) ----------------------------------------
    def check_migration(self) -> dict[str, Any]:
        """Reads the whole store through this code and writes nothing: `{"ok", "records",
        "events": [{"type", "stored_version", "current_version", "records", "failed",
        "upcasters", "old_topics"}], "snapshots": {"usable", "ignored", ...}, "views":
        [{"name", "format", "stored_format", "rebuild_needed"}], "courses",
        "courses_folded", "problems": [{"position", "subject", "version", "problem"}],
        "problem_count"}`. `ok` only when every record reads and every course folds."""
        from coursebook.service import migration  # here, as the views: see _after_write

        return migration.check(self)

    def migrate(self, *, actor: str, reason: str | None = None) -> dict[str, Any]:
        """`check_migration`, then, only if it is ok: rebuilds the views whose format
        changed, replaces the snapshots this code cannot use, and records
        `ClinicSettings.StoreMigrated` by `actor` (shown in the audit trail). Never
        rewrites a stored event. Returns `{"check", "migrated", "views_rebuilt",
        "snapshots_replaced", "recorded"}`."""
        from coursebook.service import migration

        return migration.migrate(self, actor=actor, reason=reason)

    # -- keys (docs/privacy.md) ------------------------------------------------------------
    def key_status(self, *, complete: bool = False) -> dict[str, Any]:
        """`{"keys": n, "pending_erasures": [{"kind", "patient_ref", "since", "reason"}]}`:
        the patients' data keys stored, and the erasures (or master-key rotations) whose
        old key copies may still be in the store's files. `complete` first tries to
        finish them (waiting a moment for locks and readers)."""
        if complete:
            self.keyring.complete_erasures()
        pending = self.keyring.pending_erasures()
        self._erasures_pending = bool(pending)
        return {"keys": self.keyring.key_count(), "pending_erasures": pending}

    def rotate_master_key(self, new: MasterKey) -> dict[str, Any]:
        """Re-wraps every stored key under `new` in one transaction, without touching any
        event (tags and the seal chain stay valid). Returns `{"keys", "pending"}`
        (`pending`: the old wrapped copies could not be scrubbed from the files yet; see
        `key_status`). Stop every other process using the store first: one still holding
        the old key can no longer open the keys."""
        result = self.keyring.rotate(new, self.clock.now().isoformat())
        self._erasures_pending = bool(result["pending"])
        log.info("rotate_master_key", keys=result["keys"], pending=bool(result["pending"]))
        return result

    def _notify(self, recordings: list[Any]) -> None:
        super()._notify(recordings)
        if recordings:
            ids = [r.notification.id for r in recordings]
            self._after_write(max(ids), min(ids))

    def _after_write(self, last: int, first: int | None = None) -> None:
        """Seals what was just recorded (up to notification `last`) and, inline, brings
        the views up to it. Another writer sealing at the same moment may win the race
        for a page of the chain: then this one reads on from the winner's position until
        its own events are sealed. The write itself is already committed: should the
        store stop answering here, the command stays applied and the next write, query
        or `verify` completes this."""
        try:
            chain = self.seal_chain
            for attempt in range(SEAL_ATTEMPTS):
                seal_new_events(chain, own_from=first)
                if chain.head.broken:  # tampered bookkeeping: verify reports it, no retry
                    break
                if (chain.head.position or 0) >= last or chain.table.tracked() >= last:
                    break
                time.sleep(0.005 * (attempt + 1))
            if self.views == "inline":
                from coursebook.service import read_models  # not imported by a read-only call

                read_models.catch_up(self)
            if self._erasures_pending:  # the next write finishes an unfinished erasure
                self._erasures_pending = self.keyring.try_complete_erasures()
        except (OperationalError, InterfaceError, sqlite3.Error) as error:
            log.warning("after_write", outcome="deferred", error=type(error).__name__)
        except Tampered:  # the views stop before a changed record; queries name it
            log.warning("after_write", outcome="deferred", error="Tampered")


Coursebook.snapshotting_projectors = {TreatmentCourse: project_aggregate}
