"""A refusal is remembered under its command_id: the same body sent again is refused again
with the same code, message and field whatever changed since; another body is decided
afresh; once a body is applied, that application decides every later use of the id; and
a command another writer applied first is a duplicate, never a refusal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest

from coursebook.clock import FixedClock
from coursebook.domain.ids import command_uuid
from coursebook.errors import Code, Rejected
from coursebook.service import batches
from tests.builders import (
    REFUSAL_TOPICS,
    Clinic,
    command,
    day,
    product,
    refusals_added,
    rejected,
    screening,
)
from tests.stores import make_app, params, release, reopen


def give_body(**changes: Any) -> dict[str, Any]:
    body = command("give_session", at=day(1), command_id="give-1", course_id="C1",
                   products=[product()], areas=["face"], dose_ml=2, anaesthetic=None)
    body.update(changes)
    return body


def refusal(clinic: Clinic, body: dict[str, Any]) -> Rejected:
    with pytest.raises(Rejected) as info:
        clinic.app.execute(body)
    return info.value


class TestTheSameBodyAgain:
    def test_is_refused_with_the_same_code_message_and_field_after_the_state_changed(
            self, clinic: Clinic) -> None:
        clinic.open()
        first = refusal(clinic, give_body())
        assert first.code == Code.NO_CONSULTATION
        clinic.consult()  # the rule is now met: the id still answers as it did
        again = refusal(clinic, give_body())
        assert (again.code, again.message, again.field) == \
            (first.code, first.message, first.field)
        assert clinic.course()["sessions_given"] == 0

    def test_records_the_refusal_once(self, clinic: Clinic) -> None:
        clinic.open()
        before = clinic.notifications()
        for _ in range(3):
            with rejected(Code.NO_CONSULTATION):
                clinic.app.execute(give_body())
        assert refusals_added(before, clinic.notifications()) == [command_uuid("give-1")]
        assert clinic.course()["version"] == 1  # nothing in the course's history

    def test_keys_in_another_order_are_the_same_body(self, clinic: Clinic) -> None:
        clinic.open()
        with rejected(Code.NO_CONSULTATION):
            clinic.app.execute(give_body())
        clinic.consult()
        with rejected(Code.NO_CONSULTATION):
            clinic.app.execute(dict(reversed(list(give_body().items()))))

    def test_an_invalid_command_and_an_unknown_one_are_remembered(
            self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.INVALID, "dose_ml"):
            clinic.app.execute(give_body(dose_ml=0))
        with rejected(Code.INVALID, "dose_ml"):
            clinic.app.execute(give_body(dose_ml=0))
        unknown = command("erase_everything", at=day(1), command_id="odd-1")
        for _ in range(2):
            with rejected(Code.UNKNOWN_COMMAND):
                clinic.app.execute(unknown)

    def test_a_future_fact_stays_refused_once_its_time_has_come(
            self, clinic: Clinic, clock: FixedClock) -> None:
        clinic.ready()
        tomorrow = clock.now() + dt.timedelta(days=1)
        body = give_body(at=tomorrow.isoformat())
        with rejected(Code.FUTURE_FACT):
            clinic.app.execute(body)
        clock.advance(dt.timedelta(days=2))
        with rejected(Code.FUTURE_FACT):
            clinic.app.execute(body)

    def test_an_import_run_twice_reports_the_same_lines(self, clinic: Clinic) -> None:
        clinic.open()
        data = b"\n".join(orjson.dumps(b) for b in [
            give_body(),  # NO_CONSULTATION: the consultation comes on the next line
            command("record_consultation", at=day(0), command_id="consult-1",
                    course_id="C1", consent=True, screening=screening()),
            give_body(command_id="give-2", actor="aes-cy"),  # NOT_AUTHORIZED
            give_body(command_id="give-3", at=day(2)),
        ])
        first = clinic.app.import_lines(data).as_dict()
        second = clinic.app.import_lines(data).as_dict()
        assert [r["code"] for r in first["rejected"]] == ["NO_CONSULTATION", "NOT_AUTHORIZED"]
        assert second["rejected"] == first["rejected"]
        assert (second["applied"], second["duplicates"]) == (0, first["applied"])
        assert clinic.course()["sessions_given"] == 1


class TestAnotherBody:
    def test_is_decided_afresh_and_may_be_applied(self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.NOT_AUTHORIZED):
            clinic.app.execute(give_body(actor="aes-cy"))
        assert clinic.app.execute(give_body()).status == "applied"
        assert clinic.course()["sessions_given"] == 1

    def test_once_applied_the_application_decides_every_later_use(
            self, clinic: Clinic) -> None:
        clinic.ready()
        with rejected(Code.NOT_AUTHORIZED):
            clinic.app.execute(give_body(actor="aes-cy"))
        clinic.app.execute(give_body())
        assert clinic.app.execute(give_body()).status == "duplicate"
        with rejected(Code.CONFLICTING_DUPLICATE, "command_id"):
            clinic.app.execute(give_body(actor="aes-cy"))  # the body refused before
        with rejected(Code.CONFLICTING_DUPLICATE, "command_id"):
            clinic.app.execute(give_body(dose_ml=3))

    def test_refused_too_is_remembered_beside_the_first_refusal(
            self, clinic: Clinic) -> None:
        clinic.open()
        with rejected(Code.NO_CONSULTATION):
            clinic.app.execute(give_body())
        with rejected(Code.INVALID, "dose_ml"):
            clinic.app.execute(give_body(dose_ml=0))
        clinic.consult()
        with rejected(Code.NO_CONSULTATION):
            clinic.app.execute(give_body())
        with rejected(Code.INVALID, "dose_ml"):
            clinic.app.execute(give_body(dose_ml=0))
        assert clinic.app.execute(give_body(dose_ml=3)).status == "applied"


class TestNotRemembered:
    def test_a_conflict_is_not_remembered(self, clinic: Clinic) -> None:
        clinic.ready()  # version 2
        body = command("pause_course", at=day(0, 10), command_id="pause-1", course_id="C1",
                       reason="holiday", expected_version=3)
        before = clinic.notifications()
        with rejected(Code.CONFLICT):
            clinic.app.execute(body)
        assert clinic.notifications() == before
        clinic.schedule(planned_at=day(20))  # version 3: the caller's view was right
        assert clinic.app.execute(body).status == "applied"

    def test_a_line_without_a_readable_command_id_records_nothing(
            self, clinic: Clinic) -> None:
        clinic.ready()
        before = clinic.notifications()
        report = clinic.app.import_lines(b"[1]\n" + orjson.dumps(
            give_body(command_id="has space"))).as_dict()
        assert [r["code"] for r in report["rejected"]] == ["INVALID", "INVALID"]
        assert clinic.notifications() == before


class TestAnotherWriterFirst:
    """A command applied by another writer an instant before is a duplicate, never
    refused for a rule its own application broke (and no refusal is recorded)."""

    @pytest.mark.parametrize("kind", params(["sqlite", "postgres"]))
    def test_in_a_batch_that_began_before_the_other_writer_applied_it(
            self, kind: str, tmp_path: Path, clock: FixedClock,
            monkeypatch: pytest.MonkeyPatch) -> None:
        clinic = Clinic(make_app(kind, tmp_path, clock))
        other = reopen(kind, tmp_path, clock)
        assert other is not None
        try:
            clinic.ready()
            opening = command("open_course", at=day(0), actor="admin", command_id="open-2",
                              course_id="C2", patient_ref="P2",
                              indication="skin_rejuvenation")
            pausing = command("pause_course", at=day(0, 10), command_id="pause-1",
                              course_id="C1", reason="holiday", expected_version=2)
            real = batches.recorded_originators

            def receipts_then_the_other_writer(recorder: Any, ids: Any) -> Any:
                found = real(recorder, ids)
                other.execute(opening)  # would be ALREADY_EXISTS
                other.execute(pausing)  # would be CONFLICT (the course is at 3)
                return found

            monkeypatch.setattr(batches, "recorded_originators",
                                receipts_then_the_other_writer)
            results = clinic.app.execute_batch([opening, pausing])
            assert [getattr(r, "status", None) for r in results] == \
                ["duplicate", "duplicate"]
            assert not [n for n in clinic.notifications() if n.topic in REFUSAL_TOPICS]
        finally:
            other.close()
            clinic.app.close()
            release(kind, tmp_path)
