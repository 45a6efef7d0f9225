"""The compliance page for people: summary first, worst courses first and collapsed (drawn
from the page's data when opened), codes explained, a filter that needs no script,
information-only courses in one row each."""

from __future__ import annotations

import html as markup
import re

import attrs

from coursebook.projections.compliance_html import EXPLANATIONS, render_html
from tests.unit.test_compliance_findings import at, course, session
from tests.unit.test_compliance_html import filter_class, page_data, report


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
    classes = section.group(1).split()
    assert filter_class(html, "sev-warning") in classes
    assert filter_class(html, "code-OVERDUE") in classes
    assert filter_class(html, "code-GIVEN_WITH_CAUTIONS") not in classes
    assert "<details open" not in html
    facts, findings, _, drawing = page_data(html)["c"]["C-LATE"]
    assert facts[0] == "P-1"  # the pseudonymous reference, nothing else of the patient
    assert [f[2] for f in findings] == ["OVERDUE"]
    assert [s[1] for s in drawing["s"]] == ["1"]  # its one session on the timeline
    assert drawing["d"] is not None  # and the overdue mark


def test_overdue_says_since_when_and_under_which_rule() -> None:
    [finding] = page_data(page())["c"]["C-LATE"][1]
    assert re.fullmatch(r"overdue since 2026-0\d-\d\d 00:00 under [^<]+ \(latest day "
                        r"2026-\d\d-\d\d\)", finding[4])


def test_times_in_a_finding_read_in_the_clinic_zone() -> None:
    [finding] = page_data(page())["c"]["C-LATE"][1]
    assert "last session at: 2026-03-02 10:00;" in finding[5]  # 09:00 UTC, in Paris
    assert not re.search(r"\d\dT\d\d:", finding[5])


def test_an_information_only_course_is_one_row_without_a_timeline() -> None:
    html = page()
    row = re.search(r'<tr class="row ([^"]*)" id="course-C-INFO">(.*?)</tr>', html, re.S)
    assert row is not None
    assert filter_class(html, "sev-info") in row.group(1).split()
    assert "GIVEN_WITH_CAUTIONS at session 1 (DIABETES)" in row.group(2)
    assert "C-INFO" not in page_data(html)["c"]


def test_the_filter_is_css_alone_and_covers_severity_code_and_practitioner() -> None:
    html = page()
    style = html.split("<style>")[1].split("</style>")[0]
    for control in ('id="sev-warning"', 'id="code-OVERDUE"', 'id="pr-p0"'):
        assert control in html
    for control in ("sev-warning", "code-OVERDUE", "pr-p0"):
        assert f"#{control}:checked" in style
    assert '<label for="pr-p0">nurse-lind</label>' in html
    assert re.search(rf'class="course row [^"]*\b{filter_class(html, "pr-p0")}\b', html)
    script = html.split("<script>")[1]
    assert "checked" not in script  # the filter owes nothing to the script


def test_each_code_names_what_it_was_judged_under() -> None:
    late = attrs.evolve(course("C-LATE", sessions=[session(1, at(3, 2))]),
                        catalogue={"name": "default", "version": 2, "digest": "0" * 64})
    html = render_html(report([late], at(6, 1)))
    overdue = re.search(r"<code>OVERDUE</code>.*?</tr>", html, re.S)
    assert overdue is not None
    assert "catalogue default@2; protocol default/skin_rejuvenation v1" in overdue.group(0)
