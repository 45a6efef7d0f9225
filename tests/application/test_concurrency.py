"""Two writers racing on one course: the loser is CONFLICT, or a duplicate if it sent the
very same command. The race is staged by handing the second writer a course loaded before
the first writer's change (what a second process would hold)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from coursebook.domain.ids import course_uuid
from coursebook.errors import Code
from tests.builders import Clinic, command, day, product, rejected


@pytest.fixture
def go_stale(clinic: Clinic, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """C1 ready; calling the result makes the application see C1 as it was then."""
    clinic.ready()
    stale = clinic.app.repository.get(course_uuid("C1"))
    real_get = clinic.app._get

    def get(cls: type[Any], aggregate_id: Any) -> Any:
        if aggregate_id == course_uuid("C1"):
            return stale
        return real_get(cls, aggregate_id)

    return lambda: monkeypatch.setattr(clinic.app, "_get", get)


def give(command_id: str) -> dict[str, Any]:
    return command("give_session", at=day(1), command_id=command_id, course_id="C1",
                   products=[product()], areas=["face"], dose_ml=2, anaesthetic=None)


def test_a_writer_holding_a_stale_course_loses_with_conflict(
        clinic: Clinic, go_stale: Callable[[], None]) -> None:
    clinic.pause(at=day(0, 10))  # the other writer wins
    go_stale()
    before = clinic.notifications()
    with rejected(Code.CONFLICT):
        clinic.app.execute(give("late-writer"))
    assert clinic.notifications() == before


def test_the_same_command_sent_twice_at_once_is_a_duplicate_not_a_conflict(
        clinic: Clinic, go_stale: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> None:
    assert clinic.app.execute(give("same")).status == "applied"
    go_stale()
    # The second sender decided on the course as it was before the first one committed:
    # its decision is accepted again, and only its save finds the receipt.
    receipt = clinic.app._receipt
    calls: list[str] = []

    def receipt_and_count(command_id: str) -> Any:
        calls.append(command_id)
        return receipt(command_id)

    monkeypatch.setattr(clinic.app, "_receipt", receipt_and_count)
    before = clinic.notifications()
    assert clinic.app.execute(give("same")).status == "duplicate"
    assert calls == ["same"]  # looked up once, after the save was refused
    assert clinic.notifications() == before
