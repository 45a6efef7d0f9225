"""What a store holds, read back record by record, and the invariants it must keep.

`read_ledger` decodes every stored event; `Ledger.check` proves that no event was lost or
duplicated (each aggregate's versions run 1..n) and that receipts and events agree: a
command_id has a receipt if and only if its events are there.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any
from uuid import UUID

import attrs

from coursebook.domain.store_records import ClinicSettings, CommandReceipt
from coursebook.service import read_models
from coursebook.service.application import Coursebook

__all__ = ["Ledger", "read_ledger", "views_snapshot"]


@attrs.frozen
class Ledger:
    events: list[Any]
    receipts: dict[str, Any]  # command_id -> its CommandReceipt.Accepted event
    by_command: dict[str, list[Any]]  # command_id -> the domain events it recorded

    def check(self, expected_events: dict[str, int] | None = None) -> None:
        """Raises AssertionError if any invariant is broken."""
        versions: dict[UUID, list[int]] = defaultdict(list)
        for event in self.events:
            versions[event.originator_id].append(event.originator_version)
        for originator, seen in versions.items():
            assert seen == list(range(1, len(seen) + 1)), (originator, seen)
        missing = sorted(set(self.receipts) - set(self.by_command))
        orphans = sorted(set(self.by_command) - set(self.receipts))
        assert not missing, f"receipts without events: {missing[:5]}"
        assert not orphans, f"events without a receipt: {orphans[:5]}"
        if expected_events is not None:
            partial = {c: (len(events), expected_events.get(c))
                       for c, events in self.by_command.items()
                       if len(events) != expected_events.get(c)}
            assert not partial, f"commands with a part of their events: {partial}"

    def digest(self) -> list[tuple[str, int, str, str]]:
        """Order-free content of the store, minus record times (two runs compare equal)."""
        rows = []
        for event in self.events:
            if isinstance(event, ClinicSettings.Configured):
                continue
            state = {k: v for k, v in sorted(vars(event).items())
                     if k not in {"timestamp", "recorded_at"}}
            rows.append((str(event.originator_id), event.originator_version,
                         type(event).__qualname__, repr(state)))
        return sorted(rows)


def read_ledger(app: Coursebook) -> Ledger:
    recorder: Any = app.recorder
    events = [app.mapper.to_domain_event(n) for n in recorder.select_notifications(1, 10**7)]
    receipts: dict[str, Any] = {}
    by_command: dict[str, list[Any]] = defaultdict(list)
    counted: Counter[str] = Counter()
    for event in events:
        if isinstance(event, CommandReceipt.Accepted):
            counted[event.command_id] += 1
            receipts[event.command_id] = event
        elif not isinstance(event, ClinicSettings.Configured | ClinicSettings.CatalogueAdopted):
            by_command[event.command_id].append(event)
    twice = [c for c, n in counted.items() if n > 1]
    assert not twice, f"command_ids with two receipts: {twice[:5]}"
    return Ledger(events, receipts, dict(by_command))


def views_snapshot(app: Coursebook) -> dict[str, Any]:
    """Every view's rows (in a stable order) and its position."""
    out = {}
    for name, runner in read_models.runners(app).items():
        rows = []
        for table in runner.projection.tables:
            rows.append(sorted(runner.view.query(f"SELECT * FROM {table}"), key=repr))
        out[name] = (rows, runner.view.position())
    return out
