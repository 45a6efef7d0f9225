"""The compliance report as of now, read from the compliance view: it equals the report
from the stored events at any moment (findings that begin to hold later, facts dated
after the moment asked about, erasures, licences), and it does not read the log."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coursebook.errors import StoreUnavailable
from coursebook.service import read_models
from tests.application.test_compliance_report import (
    DAY,
    HOUR,
    START,
    ZONES,
    Clinic,
    actions,
    play,
)

short_histories = st.lists(st.tuples(st.integers(min_value=1, max_value=4 * 24 * 60), actions),
                           min_size=4, max_size=18)
moments = st.lists(st.integers(min_value=-24, max_value=150 * 24).map(lambda h: START + h * HOUR),
                   min_size=1, max_size=4)


def both(clinic: Clinic, moment: dt.datetime) -> tuple[Any, Any]:
    """(the report of now from the view, the report as of the same moment from the events)
    with the clock at `moment`."""
    clinic.clock.set(moment)
    return clinic.app.compliance_report(), clinic.app.compliance_report(as_of=moment)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=short_histories, timezone=ZONES, asked=moments)
def test_the_view_answers_as_the_events_for_any_history_and_moment(
        history: list[tuple[int, tuple[Any, ...]]], timezone: str, asked: list[dt.datetime]):
    clinic = Clinic(timezone=timezone, nurse_licence="2026-02-20")
    try:
        clinic.open("C-0", START, patient_ref="P-0")
        clinic.open("C-1", START, patient_ref="P-0")
        for minutes, action in history:
            clinic.later(dt.timedelta(minutes=minutes))
            play(clinic, action)
        # Moments before, among and after the facts: some facts then lie after "now".
        for moment in asked:
            view, events = both(clinic, moment)
            assert view.document() == events.document(), moment
            assert view.erased == events.erased
            assert view.practitioners == events.practitioners
            assert dict(view.courses) == events.courses
    finally:
        clinic.app.close()


@pytest.fixture
def clinic() -> Any:
    c = Clinic(nurse_licence="2026-02-20")
    yield c
    c.app.close()


def test_findings_that_begin_later_appear_when_their_moment_comes(clinic: Clinic):
    clinic.open("C-1", START)
    clinic.later(2 * HOUR)
    assert clinic.give("C-1", START + HOUR)
    assert clinic.send("report_reaction", START + 2 * HOUR, actor="nurse", course_id="C-1",
                       session_no=1, kind="nodules", severity=4)
    codes = {}
    for days in (1, 3, 30):
        view, events = both(clinic, START + days * DAY)
        assert view.document() == events.document()
        codes[days] = {f.code for f in view.findings}
    assert "REACTION_UNREVIEWED" not in codes[1]
    assert "REACTION_UNREVIEWED" in codes[3]
    assert "LICENSE_EXPIRING" in codes[30] - codes[1]  # the nurse's licence, 16 days left
    assert "OVERDUE" in codes[30] - codes[3]
    assert view.html() == events.html()  # the page folds the courses it draws


def test_a_fact_dated_after_now_is_left_out_as_the_events_leave_it_out(clinic: Clinic):
    clinic.open("C-1", START)
    clinic.later(10 * DAY)
    assert clinic.give("C-1", START + 10 * DAY)
    view, events = both(clinic, START + DAY)  # the session lies after this "now"
    assert view.document() == events.document()
    assert view.courses["C-1"].sessions_given == 0


def test_the_report_of_now_reads_the_view_not_the_log(clinic: Clinic,
                                                      monkeypatch: pytest.MonkeyPatch):
    clinic.open("C-1", START)
    clinic.later(HOUR)
    assert clinic.give("C-1", START + HOUR)
    expected = clinic.app.compliance_report(as_of=START + 60 * DAY).document()
    clinic.clock.set(START + 60 * DAY)

    def refuse() -> Any:
        raise AssertionError("the report of now read the whole log")

    monkeypatch.setattr(clinic.app, "report_events", refuse)
    assert clinic.app.compliance() == expected
    with pytest.raises(AssertionError):
        clinic.app.compliance(as_of=START + 60 * DAY)


def test_the_view_is_rebuilt_and_checked_as_the_other_views(clinic: Clinic):
    clinic.open("C-1", START)
    clinic.later(HOUR)
    assert clinic.give("C-1", START + HOUR)
    clinic.clock.set(START + 60 * DAY)
    before = clinic.app.compliance()
    assert "compliance" in clinic.app.view_names()
    assert clinic.app.rebuild_views("compliance") > 0
    assert clinic.app.compliance() == before
    view = read_models.runners(clinic.app)["compliance"].view
    view._execute_in_transaction("UPDATE view_compliance SET latest_at = 0", ())
    problems = read_models.verify_views(clinic.app)
    assert [p["subject"] for p in problems] == ["view compliance"]
    assert "view_compliance row C-1" in problems[0]["problem"]


def test_a_report_of_now_looked_up_after_close_says_so(clinic: Clinic):
    clinic.open("C-1", START)
    clinic.clock.set(START + DAY)
    report = clinic.app.compliance_report()
    assert report.document()["courses"] == 1
    clinic.app.close()
    with pytest.raises(StoreUnavailable, match="before closing the store"):
        report.courses["C-1"]
