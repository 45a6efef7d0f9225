"""`compliance(..., what_if=REF)`: the recorded facts judged under another catalogue.

- Under a catalogue with a longer minimum interval, a session given sooner yields
  SPACING_OVERRIDDEN with the recorded override reason (or null); a course whose
  indication the catalogue does not cover is judged as recorded and listed in
  `not_covered`; `added`/`removed` compare with the recorded judgement as multisets.
- Under default@2 a listed blood thinner on the screening becomes a caution for every
  session after it; for a patient erased by then, the codes recorded are used.
- Nothing is recorded; a bad reference is INVALID naming the catalogue.
- The HTML page of a what-if says so in its title, a banner and its colour.
- Property: judged under each course's own catalogue, a store's report gains and loses
  nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from coursebook.clock import FixedClock
from coursebook.errors import Code, Rejected
from coursebook.service.application import Coursebook
from tests.application.test_replay_property import opening_steps, steps
from tests.builders import Clinic, day, rejected
from tests.stores import START, make_app

DEFAULT_2 = Path(__file__).resolve().parents[2] / "coursebook/domain/catalogue/default-2.toml"


def keys(findings: list[dict[str, Any]]) -> list[tuple[str, str | None, int | None]]:
    return sorted((f["code"], f["course_id"], f["session_no"]) for f in findings)


@pytest.fixture
def narrow(tmp_path: Path) -> str:
    """A catalogue without hair restoration whose skin protocol needs 30 days."""
    text = DEFAULT_2.read_text(encoding="utf-8").replace('name = "default"', 'name = "narrow"')
    text = re.sub(r"\[protocols\.hair_restoration\].*?(?=\n\[)", "", text, flags=re.S)
    text = text.replace("{ first = 1, last = 3, min_days = 14, target_days = 21, max_days = 28 }",
                        "{ first = 1, last = 3, min_days = 30, target_days = 35, max_days = 40 }")
    path = tmp_path / "narrow.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def two_courses(app: Coursebook) -> Clinic:
    clinic = Clinic(app)
    clinic.ready("C1")
    clinic.give("C1", at=day(1))
    clinic.give("C1", at=day(18))  # 17 days: fine under 14, too soon under 30
    clinic.give("C1", at=day(45), spacing_override_reason="patient travels")  # 27 days
    clinic.ready("H1", patient_ref="P2", indication="hair_restoration")
    clinic.give("H1", at=day(1))
    return clinic


def test_another_catalogue_rejudges_spacing_and_leaves_uncovered_courses_as_recorded(
        app: Coursebook, narrow: str) -> None:
    two_courses(app)
    as_of = day(50)
    recorded = app.compliance(as_of=as_of)
    document = app.compliance(as_of=as_of, what_if=narrow)
    what_if = document["what_if"]
    assert what_if["catalogue"]["name"] == "narrow"
    assert len(what_if["catalogue"]["digest"]) == 64
    assert what_if["not_covered"] == ["H1"]
    spacing = {f["session_no"]: f["detail"]["reason"] for f in document["findings"]
               if f["code"] == "SPACING_OVERRIDDEN" and f["course_id"] == "C1"}
    assert spacing == {2: None, 3: "patient travels"}
    assert ("SPACING_OVERRIDDEN", "C1", 2) in keys(what_if["added"])
    assert ("SPACING_OVERRIDDEN", "C1", 3) in keys(what_if["added"])
    assert keys([f for f in document["findings"] if f["course_id"] == "H1"]) == \
        keys([f for f in recorded["findings"] if f["course_id"] == "H1"])
    # added and removed are exactly the multiset difference of the two judgements
    mine, theirs = keys(document["findings"]), keys(recorded["findings"])
    for item in set(mine) | set(theirs):
        assert mine.count(item) - theirs.count(item) == \
            keys(what_if["added"]).count(item) - keys(what_if["removed"]).count(item)


def test_blood_thinners_become_cautions_unless_the_patient_was_erased(
        app: Coursebook) -> None:
    clinic = Clinic(app)
    clinic.open("C1")
    clinic.consult("C1", medications=["Naproxen 250 mg"])
    clinic.give("C1", at=day(1))
    added = keys(app.compliance(as_of=day(5), what_if="default@2")["what_if"]["added"])
    assert ("SCREENING_INCONSISTENT", "C1", None) in added
    assert ("GIVEN_WITH_CAUTIONS", "C1", 1) in added
    clinic.run("erase_patient", at=day(6), actor="dpo", patient_ref="P1",
               reason="erasure request 1")
    after = app.compliance(as_of=day(7), what_if="default@2")
    assert ("SCREENING_INCONSISTENT", "C1", None) not in keys(after["what_if"]["added"])
    assert "Naproxen" not in str(after)


def test_a_what_if_records_nothing_and_a_bad_reference_is_invalid(
        app: Coursebook, narrow: str) -> None:
    two_courses(app)
    recorder: Any = app.recorder
    before, report = recorder.max_notification_id(), app.compliance(as_of=day(50))
    app.compliance(as_of=day(50), what_if=narrow)
    app.compliance(as_of=day(50), what_if="default@2")
    assert recorder.max_notification_id() == before
    assert app.compliance(as_of=day(50)) == report
    assert "what_if" not in report
    with rejected(Code.INVALID, "catalogue"):
        app.compliance(what_if="no-such@9")


def test_the_html_page_of_a_what_if_cannot_be_mistaken_for_the_recorded_one(
        app: Coursebook) -> None:
    two_courses(app)
    page = app.compliance_report(as_of=day(50), what_if="default@2").html()
    recorded = app.compliance_report(as_of=day(50)).html()
    title = re.search(r"<title>(.*?)</title>", page, flags=re.S)
    assert title is not None
    assert title.group(1).startswith("WHAT-IF under default@2")
    assert 'class="what-if-banner" role="alert">WHAT-IF' in page
    assert '<body class="what-if">' in page
    assert "what-if" not in recorded.replace("what-if-banner", "").split("</style>")[1]


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(history=steps())
def test_under_its_own_catalogue_a_store_adds_and_removes_nothing(
        tmp_path_factory: pytest.TempPathFactory,
        history: list[tuple[int, dict[str, Any]]]) -> None:
    clock = FixedClock(START - dt.timedelta(days=3))
    for catalogue in ("default@1", "default@2"):
        app = make_app("sqlite", tmp_path_factory.mktemp("whatif"), clock,
                       catalogue=catalogue)
        try:
            for advance, body in [*opening_steps(), *history]:
                clock.set(clock.now() + dt.timedelta(seconds=advance))
                with contextlib.suppress(Rejected):
                    app.execute(body)
            for as_of in (day(20), day(70), clock.now()):
                document = app.compliance(as_of=as_of, what_if=catalogue)
                assert document["what_if"]["added"] == []
                assert document["what_if"]["removed"] == []
                assert document["what_if"]["not_covered"] == []
                assert document["findings"] == app.compliance(as_of=as_of)["findings"]
        finally:
            app.close()
