"""The store's own records keep their stored topics across the move of their module.

`coursebook/domain/store_records.py` was `coursebook/domain/bookkeeping.py`; stores
written before the move hold that module path in their topics.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from eventsourcing.utils import get_topic, resolve_topic

from coursebook.domain.ids import command_uuid
from coursebook.domain.store_records import ClinicSettings, CommandReceipt
from tests.builders import Clinic

OLD = "coursebook.domain.bookkeeping"
RECORDED = dt.datetime(2026, 9, 1, 7, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("topic", "cls"), [
    (f"{OLD}:CommandReceipt", CommandReceipt),
    (f"{OLD}:CommandReceipt.Accepted", CommandReceipt.Accepted),
    (f"{OLD}:ClinicSettings", ClinicSettings),
    (f"{OLD}:ClinicSettings.Configured", ClinicSettings.Configured),
])
def test_a_topic_stored_before_the_move_resolves_to_the_moved_class(
        topic: str, cls: type) -> None:
    assert resolve_topic(topic) is cls


@pytest.mark.parametrize("cls", [CommandReceipt.Accepted, ClinicSettings.Configured])
def test_new_events_are_stored_under_the_topic_they_always_had(cls: type) -> None:
    assert get_topic(cls) == f"{OLD}:{cls.__qualname__}"


def test_a_receipt_stored_before_the_move_rebuilds_as_a_command_receipt() -> None:
    accepted: Any = CommandReceipt.Accepted  # mypy sees no fields of an event class
    event = accepted(
        originator_id=command_uuid("cmd-old"), originator_version=1, timestamp=RECORDED,
        originator_topic=f"{OLD}:CommandReceipt", command_id="cmd-old",
        command="open_course", digest="0" * 64, subject="C1")
    receipt = event.mutate(None)
    assert isinstance(receipt, CommandReceipt)
    assert (receipt.command_id, receipt.subject) == ("cmd-old", "C1")


def test_the_store_holds_receipts_and_settings_under_their_old_topics(
        clinic: Clinic) -> None:
    clinic.open()
    topics = {n.topic for n in clinic.notifications()}
    assert {f"{OLD}:CommandReceipt.Accepted", f"{OLD}:ClinicSettings.Configured"} <= topics
    # Adopting a catalogue (an event class added after the move) is stored under its own
    # module's topic: there is no old name for it.
    new = {"coursebook.domain.store_records:ClinicSettings.CatalogueAdopted"}
    assert not any(t.startswith("coursebook.domain.store_records:") for t in topics - new)
