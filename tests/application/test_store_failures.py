"""When the store stops answering in the middle of a command: `StoreUnavailable`, nothing
partial recorded, and the same command sent again applies exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from coursebook.errors import StoreUnavailable
from tests import pg
from tests.builders import Clinic, command, day


def adjust(command_id: str) -> dict[str, Any]:
    return command("adjust_interval", at=day(0, 11), command_id=command_id, course_id="C1",
                   min_days=7, target_days=20, max_days=40, reason="store failure test")


def test_a_store_that_fails_on_commit_is_unavailable_and_the_retry_applies_once(
        clinic: Clinic, monkeypatch: pytest.MonkeyPatch) -> None:
    clinic.ready()
    before = clinic.notifications()
    writes: Any = clinic.app.events.horizon  # every insert of events goes through it

    def gone(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patch:
        patch.setattr(writes, "insert", gone)
        with pytest.raises(StoreUnavailable, match="same command_id"):
            clinic.app.execute(adjust("lost-reply"))
    assert clinic.notifications() == before
    assert clinic.app.execute(adjust("lost-reply")).status == "applied"
    assert clinic.app.execute(adjust("lost-reply")).status == "duplicate"
    assert len(clinic.notifications()) == len(before) + 2  # one event, one receipt


@pytest.mark.parametrize("store_kind", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_connections_cut_by_the_server_are_replaced_and_the_command_applies(
        clinic: Clinic) -> None:
    clinic.ready()
    assert pg.terminate_connections() >= 1
    assert clinic.app.execute(adjust("after-restart")).status == "applied"
    assert clinic.course()["version"] == 3
