"""Stamping at commit (`adapters/storage/record_time.py`): what is inserted carries the
stamp the domain event was moved to, also when the insert is tried again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from coursebook.adapters.storage.record_time import TICK, MemoryHorizonTable, Restamp
from coursebook.clock import FixedClock
from coursebook.domain.ids import CLINIC_ID
from coursebook.domain.store_records import ClinicSettings
from coursebook.service.application import Coursebook
from tests.stores import START


class RetriedHorizon(MemoryHorizonTable):
    """Restamps twice under one horizon, as an insert retried after a failure does."""

    def insert(self, recorder: Any, stored_events: Sequence[Any], restamp: Restamp,
               **kwargs: Any) -> Sequence[int] | None:
        restamp(self.read())
        return super().insert(recorder, stored_events, restamp, **kwargs)


def test_a_retried_insert_stores_the_stamp_the_event_was_moved_to() -> None:
    app = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=FixedClock(START))
    try:
        horizon = RetriedHorizon()
        horizon.raise_to(START + dt.timedelta(hours=1))
        app.events.horizon = horizon  # type: ignore[attr-defined]
        settings = ClinicSettings.configure(recorded_at=START, timezone="UTC")
        pending = list(settings.pending_events)
        recordings = app.save(settings)
        stored = [app.mapper.to_domain_event(r.notification) for r in recordings]
        assert [e.timestamp for e in stored] == [START + dt.timedelta(hours=1) + TICK]
        assert [e.timestamp for e in pending] == [e.timestamp for e in stored]
        assert [e.timestamp for e in app.events.get(CLINIC_ID)] == \
            [e.timestamp for e in stored]
    finally:
        app.close()


def test_events_stamped_after_the_horizon_are_stored_as_they_were_encoded() -> None:
    app = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=FixedClock(START))
    try:
        app.known_horizon.table.raise_to(START - TICK)
        settings = ClinicSettings.configure(recorded_at=START, timezone="UTC")
        app.save(settings)
        assert [e.timestamp for e in app.events.get(CLINIC_ID)] == [START]
    finally:
        app.close()
