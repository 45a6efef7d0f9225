"""The compliance page for people: summary first, worst courses first and collapsed, codes
explained, a filter that needs no script, information-only courses in one row each."""

from __future__ import annotations

import html as markup
import re

from coursebook.projections.compliance_html import EXPLANATIONS, render_html
from tests.unit.test_compliance_findings import at, course, session
from tests.unit.test_compliance_html import report


def page() -> str:
    overdue = course("C-LATE", sessions=[session(1, at(3, 2))])  # next window long gone
    cautious = course("C-INFO", status="completed",
                      sessions=[session(1, at(3, 2), cautions=("DIABETES",))])
    return render_html(report([cautious, overdue], at(6, 1)))


def test_the_summary_comes_first_and_explains_each_code_found() -> None:
    html = page()
    assert html.index('id="summary"') < html.index('id="courses"')
    for code in ("OVERDUE", "GIVEN_WITH_CAUTIONS"):  # as jinja escapes it
        assert markup.escape(EXPLANATIONS[code], quote=False).replace("'", "&#39;") in html


def test_a_course_with_a_warning_is_a_collapsed_section_with_its_timeline() -> None:
    html = page()
    section = re.search(r'<details class="course row ([^"]*)" id="course-C-LATE">(.*?)'
                        r"</details>", html, re.S)
    assert section is not None
    assert "s-warning" in section.group(1)
    assert "c-OVERDUE" in section.group(1)
    assert '<svg class="timeline" data-course="C-LATE"' in section.group(2)
    assert "<details open" not in html


def test_overdue_says_since_when_and_under_which_rule() -> None:
    assert re.search(r"<b>overdue since 2026-0\d-\d\d 00:00 under [^<]+ \(latest day "
                     r"2026-\d\d-\d\d\)</b>", page())


def test_an_information_only_course_is_one_row_without_a_timeline() -> None:
    html = page()
    row = re.search(r'<tr class="row ([^"]*)" id="course-C-INFO">(.*?)</tr>', html, re.S)
    assert row is not None
    assert "s-info" in row.group(1)
    assert "GIVEN_WITH_CAUTIONS at session 1 (DIABETES)" in row.group(2)
    assert 'data-course="C-INFO"' not in html


def test_the_filter_is_css_alone_and_covers_severity_code_and_practitioner() -> None:
    html = page()
    assert "<script" not in html
    for control in ('id="sev-warning"', 'id="code-OVERDUE"', 'id="pr-p0"'):
        assert control in html
    assert "main:has(> #sev-warning:checked) .row:not(.s-warning)" in html
    assert "main:has(> #code-OVERDUE:checked) .row:not(.c-OVERDUE)" in html
    assert "main:has(> #pr-p0:checked) .row:not(.p0)" in html
    assert '<label for="pr-p0">nurse-lind</label>' in html
    assert re.search(r'class="course row [^"]*\bp0\b', html)
