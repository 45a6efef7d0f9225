"""The Python API: one method per command, with the contract's names and fields."""

from __future__ import annotations

import datetime as dt
import inspect

import pytest

from coursebook.domain.commands import COMMANDS
from coursebook.domain.values import Product
from coursebook.errors import Code
from coursebook.service.application import Coursebook
from tests.builders import PATIENT, T0, rejected, screening

COMMON = {"command_id", "at", "actor", "expected_version"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_a_method_with_exactly_the_contract_fields(name: str) -> None:
    method = getattr(Coursebook, name)
    parameters = inspect.signature(method).parameters
    assert set(parameters) - {"self"} == COMMON | set(COMMANDS[name])
    for field, spec in COMMANDS[name].items():
        has_default = parameters[field].default is not inspect.Parameter.empty
        assert has_default == (not spec.required), field


def at(days: float, hour: int = 9) -> dt.datetime:
    return (T0 + dt.timedelta(days=days)).replace(hour=hour)


def test_a_whole_course_through_the_typed_methods(app: Coursebook) -> None:
    ids = iter(f"api-{n}" for n in range(100))

    def c() -> dict[str, str]:
        return {"command_id": next(ids), "actor": "dr-ada"}

    assert app.register_practitioner(
        **c(), at=at(-30), practitioner_id="dr-ada", name="Ada", role="physician",
        license_number="L-1", license_expires_on=dt.date(2026, 12, 31)).status == "applied"
    app.register_practitioner(**{**c(), "actor": "admin"}, at=at(-30),
                              practitioner_id="aes-cy", name="Cy", role="aesthetician",
                              license_number="L-2", license_expires_on="2027-01-01")
    app.renew_license(**c(), at=at(-29), practitioner_id="dr-ada", license_number="L-1b",
                      license_expires_on=dt.date(2030, 1, 1))
    opened = app.open_course(**c(), at=at(0, 8), course_id="C1", patient_ref="P1",
                             indication="cellulite", planned_sessions=5, patient=PATIENT)
    assert (opened.status, opened.command, opened.subject, opened.version) == \
        ("applied", "open_course", "C1", 1)
    app.record_consultation(**c(), at=at(0), course_id="C1", consent=True,
                            screening=screening(pregnant=True, diabetes=True))
    app.override_contraindication(**c(), at=at(0, 10), course_id="C1", code="PREGNANCY",
                                  justification="post-partum, not pregnant: checked")
    app.schedule_session(**c(), at=at(0, 11), course_id="C1", planned_at=at(1),
                         practitioner_id="dr-ada")
    app.reschedule_session(**c(), at=at(0, 12), course_id="C1", session_no=1,
                           planned_at=at(2), reason="patient asked")
    app.give_session(**c(), at=at(2), course_id="C1", session_no=1,
                     products=[Product("Collagen", "LOT-9", dt.date(2027, 1, 1))],
                     areas=["thighs"], dose_ml=4, anaesthetic="EMLA")
    app.report_reaction(**{**c(), "actor": "aes-cy"}, at=at(3), course_id="C1",
                        session_no=1, kind="nodules", severity=3, notes="small nodule")
    app.review_reaction(**c(), at=at(4), course_id="C1", session_no=1, decision="continue")
    app.schedule_session(**c(), at=at(4, 10), course_id="C1", planned_at=at(9))
    app.cancel_session(**c(), at=at(5), course_id="C1", session_no=2, reason="ill")
    app.adjust_interval(**c(), at=at(5, 10), course_id="C1", min_days=8, target_days=10,
                        max_days=12, reason="nodules: slower pace")
    app.extend_plan(**c(), at=at(5, 11), course_id="C1", planned_sessions=6,
                    reason="good response")
    app.pause_course(**c(), at=at(6), course_id="C1", reason="holiday")
    app.resume_course(**c(), at=at(7), course_id="C1")
    app.give_session(**c(), at=at(10), course_id="C1", products=[
        {"name": "Collagen", "lot": "LOT-9", "expires_on": "2027-01-01"}],
        areas=["thighs"], dose_ml=4.5, anaesthetic=None, expected_version=14)
    completed = app.complete_course(**c(), at=at(11), course_id="C1")
    assert completed.version == 16
    course = app.get_course("C1")
    assert course["status"] == "maintenance"
    assert course["planned_sessions"] == 6
    assert course["sessions_given"] == 2
    assert course["contraindications"] == {
        "absolute": ["PREGNANCY"], "relative": ["DIABETES"], "overridden": ["PREGNANCY"]}
    app.discontinue_course(**c(), at=at(12), course_id="C1", reason="moved away")
    assert app.get_course("C1")["status"] == "discontinued"
    erased = app.erase_patient(**{**c(), "actor": "admin"}, at=at(13), patient_ref="P1",
                               reason="GDPR request")
    assert erased.status == "applied"
    assert app.get_course("C1")["version"] == 17  # erasure adds no course event
    assert [h["event"] for h in app.get_history("C1")] == [
        "Opened", "ConsultationRecorded", "ContraindicationOverridden", "SessionScheduled",
        "SessionRescheduled", "SessionGiven", "ReactionReported", "ReactionReviewed",
        "SessionScheduled", "SessionCancelled", "IntervalAdjusted", "PlanExtended",
        "Paused", "Resumed", "SessionGiven", "Completed", "Discontinued"]


def test_a_method_refuses_like_execute(app: Coursebook) -> None:
    with rejected(Code.NOT_FOUND):
        app.complete_course(command_id="x-1", at=T0, actor="dr-ada", course_id="nope")
    with rejected(Code.INVALID, "at"):
        app.complete_course(command_id="x-2", at=dt.datetime(2026, 9, 1, 9), actor="dr-ada",
                            course_id="nope")
