"""The receipt of a command_id remembers refusals beside the application: its events, and
the stored topics they are written under (the first application's is unchanged)."""

from __future__ import annotations

import datetime as dt

from eventsourcing.utils import get_topic

from coursebook.domain.ids import command_uuid
from coursebook.domain.store_records import CommandReceipt, RememberedRefusal
from coursebook.errors import Code
from tests.builders import Clinic, day, rejected

RECORDED = dt.datetime(2026, 9, 1, 7, 0, tzinfo=dt.UTC)


def refused() -> CommandReceipt:
    return CommandReceipt.refuse(recorded_at=RECORDED, command_id="c-1",
                                 command="give_session", digest="a" * 64,
                                 code="NO_CONSULTATION", message="no consultation",
                                 field=None)


def test_a_refusal_is_remembered_by_the_digest_of_its_body() -> None:
    receipt = refused()
    assert receipt.id == command_uuid("c-1")
    assert not receipt.applied
    assert receipt.refusals == {"a" * 64: RememberedRefusal(
        "give_session", "NO_CONSULTATION", "no consultation", None)}


def test_another_body_refused_then_applied_keeps_every_refusal() -> None:
    receipt = refused()
    receipt.refuse_another(recorded_at=RECORDED, command=None, digest="b" * 64,
                           code="UNKNOWN_COMMAND", message="no such command", field="command")
    receipt.accept_another(recorded_at=RECORDED, command="give_session", digest="c" * 64,
                           subject="C1")
    assert receipt.applied
    assert (receipt.digest, receipt.subject, receipt.version) == ("c" * 64, "C1", 3)
    assert set(receipt.refusals) == {"a" * 64, "b" * 64}


def test_an_application_alone_remembers_no_refusal() -> None:
    receipt = CommandReceipt.accept(recorded_at=RECORDED, command_id="c-2",
                                    command="open_course", digest="d" * 64, subject="C1")
    assert receipt.applied
    assert receipt.refusals == {}


def test_the_first_application_keeps_its_stored_topic_and_refusals_have_their_own(
        clinic: Clinic) -> None:
    assert get_topic(CommandReceipt.Accepted) == \
        "coursebook.domain.bookkeeping:CommandReceipt.Accepted"
    clinic.open()
    with rejected(Code.INVALID, "products"):
        clinic.run("give_session", at=day(1), course_id="C1", products=[], areas=["face"],
                   dose_ml=1, anaesthetic=None)
    topics = [n.topic for n in clinic.notifications()]
    assert topics[-1] == get_topic(CommandReceipt.Refused)
