"""Idempotency and optimistic concurrency (CONTRACT section 3, `command_id` and
`expected_version`), on every store kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from coursebook.clock import FixedClock
from coursebook.errors import Code
from tests.builders import Clinic, command, day, product, rejected, screening
from tests.stores import PERSISTENT_KINDS, params, reopen


def give_body(**changes: object) -> dict[str, object]:
    body = command("give_session", at=day(1), command_id="give-1", course_id="C1",
                   products=[product()], areas=["face", "neck"], dose_ml=2,
                   anaesthetic=None)
    body.update(changes)
    return body


class TestSameCommandIdSameBody:
    def test_is_a_duplicate_that_records_nothing(self, clinic: Clinic) -> None:
        clinic.ready()
        assert clinic.app.execute(give_body()).status == "applied"
        before = clinic.notifications()
        outcome = clinic.app.execute(give_body())
        assert outcome.status == "duplicate"
        assert outcome.command == "give_session"
        assert outcome.subject == "C1"
        assert clinic.notifications() == before
        assert clinic.course()["sessions_given"] == 1

    def test_keys_in_another_order_are_the_same_body(self, clinic: Clinic) -> None:
        clinic.ready()
        body = give_body()
        clinic.app.execute(body)
        reordered = dict(reversed(list(body.items())))
        reordered["products"] = [dict(reversed(list(product().items())))]
        assert clinic.app.execute(reordered).status == "duplicate"

    def test_two_and_two_point_zero_are_the_same_body(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.app.execute(give_body(dose_ml=2))
        assert clinic.app.execute(give_body(dose_ml=2.0)).status == "duplicate"

    def test_a_nested_screening_in_another_order_is_the_same_body(
            self, clinic: Clinic) -> None:
        clinic.open()
        answers = screening(allergies=["latex"], notes="none")
        body = command("record_consultation", at=day(0), command_id="consult-1",
                       course_id="C1", consent=True, screening=answers)
        clinic.app.execute(body)
        again = {**body, "screening": dict(sorted(answers.items(), reverse=True))}
        assert clinic.app.execute(again).status == "duplicate"

    def test_stays_a_duplicate_after_the_course_moved_on(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.app.execute(give_body())
        clinic.run("discontinue_course", at=day(2), course_id="C1", reason="moved away")
        assert clinic.app.execute(give_body()).status == "duplicate"


class TestSameCommandIdOtherBody:
    def test_is_conflicting_duplicate_and_records_nothing(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.app.execute(give_body())
        before = clinic.notifications()
        with rejected(Code.CONFLICTING_DUPLICATE, "command_id"):
            clinic.app.execute(give_body(dose_ml=2.5))
        assert clinic.notifications() == before

    def test_a_different_list_order_is_a_different_body(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.app.execute(give_body())
        with rejected(Code.CONFLICTING_DUPLICATE):
            clinic.app.execute(give_body(areas=["neck", "face"]))

    def test_an_id_reused_for_another_command_is_conflicting(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.app.execute(give_body())
        with rejected(Code.CONFLICTING_DUPLICATE):
            clinic.app.execute(command("pause_course", at=day(2), command_id="give-1",
                                       course_id="C1", reason="holiday"))


class TestRejectedCommand:
    def test_is_refused_again_after_the_state_changed(self, clinic: Clinic) -> None:
        clinic.open()
        with rejected(Code.NO_CONSULTATION):
            clinic.app.execute(give_body())
        clinic.consult()
        with rejected(Code.NO_CONSULTATION):  # remembered: a new command_id tries again
            clinic.app.execute(give_body())
        assert clinic.app.execute(give_body(command_id="give-2")).status == "applied"

    def test_an_invalid_command_leaves_its_id_free_for_another_body(
            self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.INVALID):
            clinic.app.execute(give_body(dose_ml=0))
        assert clinic.app.execute(give_body()).status == "applied"


class TestExpectedVersion:
    def test_the_current_version_is_accepted(self, clinic: Clinic) -> None:
        clinic.ready()
        outcome = clinic.give(expected_version=2)
        assert outcome.version == 3

    def test_a_stale_version_is_conflict_and_records_nothing(self, clinic: Clinic) -> None:
        clinic.ready()
        before = clinic.notifications()
        with rejected(Code.CONFLICT, "expected_version"):
            clinic.give(expected_version=1)
        assert clinic.notifications() == before

    def test_a_version_ahead_is_conflict(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.CONFLICT):
            clinic.run("pause_course", at=day(0, 10), course_id="C1", reason="holiday",
                       expected_version=7)

    def test_zero_means_the_course_must_not_exist_yet(self, clinic: Clinic) -> None:
        clinic.open(expected_version=0)
        with rejected(Code.CONFLICT):
            clinic.open("C1", expected_version=0)

    def test_each_accepted_command_adds_exactly_one_version(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.schedule(planned_at=day(1))
        clinic.give(at=day(1))
        clinic.react(severity=1)
        assert clinic.course()["version"] == 5


@pytest.mark.parametrize("store_kind", params(PERSISTENT_KINDS))
def test_a_duplicate_is_recognised_by_another_process_on_the_same_store(
        clinic: Clinic, store_kind: str, tmp_path: Path, clock: FixedClock) -> None:
    clinic.ready()
    clinic.app.execute(give_body())
    other = reopen(store_kind, tmp_path, clock)
    assert other is not None
    try:
        assert other.execute(give_body()).status == "duplicate"
        with rejected(Code.CONFLICTING_DUPLICATE):
            other.execute(give_body(dose_ml=3))
    finally:
        other.close()
