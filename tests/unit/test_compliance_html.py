"""The compliance page drawn from a report held in memory (no store, no browser)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from zoneinfo import ZoneInfo

from coursebook.domain import rules
from coursebook.domain.course_state import CourseState, Override
from coursebook.projections.compliance import Report, judge
from coursebook.projections.compliance_html import render_html, timeline
from tests.unit.test_compliance_findings import at, course, session

PARIS = ZoneInfo("Europe/Paris")


def report(states: list[CourseState], as_of: dt.datetime,
           practitioners: list[rules.Practitioner] | None = None) -> Report:
    return Report(as_of=as_of, known_at=None, zone=PARIS,
                  courses={s.course_id: s for s in states},
                  practitioners={p.practitioner_id: p for p in practitioners or []},
                  erased=frozenset(),
                  findings=judge(states, practitioners or [], as_of=as_of, zone=PARIS))


def page_data(html: str) -> dict[str, Any]:
    """The page's data block: what its script draws an opened course from."""
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html,
                      re.S)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def filter_class(html: str, control: str) -> str:
    """The class a row carries to stay visible when the filter `control` is chosen
    (`code-OVERDUE`, `sev-warning`, `pr-p0`), read from the page's own CSS rule."""
    found = re.search(rf"main:has\(> #{re.escape(control)}:checked\) \.row:not\(\.([\w-]+)\)",
                      html)
    assert found is not None, control
    return found.group(1)


def test_a_page_without_findings_says_so_and_draws_no_timeline():
    html = render_html(report([], at(3, 1)))
    assert "No findings." in html
    assert "<svg" not in html


def test_a_licence_finding_alone_is_listed_without_a_timeline():
    nurse = rules.Practitioner("nurse-lind", "nurse", dt.date(2026, 3, 20))
    html = render_html(report([], at(3, 1), [nurse]))
    assert "LICENSE_EXPIRING" in html
    assert "<svg" not in html


def test_recorded_text_is_escaped_on_the_page():
    override = Override("PREGNANCY", "<script>alert('x')</script> negative test", "dr-okafor",
                        at(3, 1))
    state = course(status="completed", sessions=[session(1, at(3, 2), overrides=(override,))])
    html = render_html(report([state], at(3, 10)))
    assert "<script>alert" not in html
    assert html.count("</script>") == 2  # the data block and the page's script: not ended early
    [finding] = page_data(html)["c"]["C-1"][1]
    assert "<script>alert('x')</script> negative test" in finding[5]  # drawn as text


def test_each_session_window_is_shaded_from_the_rule_recorded_with_it():
    state = course(sessions=[session(1, at(3, 2)), session(2, at(3, 10), gap=8,
                                                           reason="Travelling abroad")])
    as_of = at(3, 12)
    drawing = timeline(state, judge([state], [], as_of=as_of, zone=PARIS), as_of=as_of,
                       zone=PARIS)
    windows = drawing["windows"]
    assert [w["next"] for w in windows] == [False, True]
    assert "2026-03-16 .. 2026-03-30" in windows[0]["title"]  # 03-02 + 14 .. + 28
    assert "2026-03-24 .. 2026-04-07" in windows[1]["title"]  # 03-10 + 14 .. + 28
    session_2 = drawing["sessions"][1]
    assert session_2["kind"] == "overridden"
    assert session_2["x"] < windows[0]["x"]  # given before its window opened


def test_the_page_explains_every_code_in_words() -> None:
    from coursebook.projections.compliance import CODES, MEANING

    assert set(MEANING) == set(CODES)
    assert all(len(words.split()) >= 5 for words in MEANING.values())
