"""`coursebook compliance` on the command line: the JSON document, the table, the HTML page,
and the page as a real browser (headless Chromium) renders it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_compliance_html import page_data

COURSEBOOK = str(Path(sys.executable).with_name("coursebook"))
PERSONAL = ("Jeanne", "Martin", "1984-03-12", "sister's wedding", "Metformin")
AS_OF = "2026-04-01T12:00:00+02:00"
SCREENING = {"pregnant": False, "breastfeeding": False, "active_infection_at_site": False,
             "bleeding_disorder": False, "anticoagulants": False, "autoimmune_disease": False,
             "diabetes": False, "heart_condition": False, "allergies": [],
             "medications": ["Metformin"], "notes": "Sister's wedding in June"}
PRODUCT = {"name": "NCTF 135 HA", "lot": "LOT-1", "expires_on": "2030-12-31"}
_counter = iter(range(1, 1000))


def cmd(command: str, at: str, actor: str = "dr-okafor", /, **fields: Any) -> dict[str, Any]:
    return {"command": command, "command_id": f"e2e-{next(_counter)}", "at": at, "actor": actor,
            **fields}


def give(course_id: str, at: str, **fields: Any) -> dict[str, Any]:
    return cmd("give_session", at, "nurse-lind", course_id=course_id, products=[PRODUCT],
               areas=["face"], dose_ml=1.0, anaesthetic=None, **fields)


HISTORY = [
    cmd("register_practitioner", "2026-02-20T09:00:00+01:00", "admin",
        practitioner_id="dr-okafor", name="Dr Ada Okafor", role="physician",
        license_number="L-1", license_expires_on="2030-12-31"),
    cmd("register_practitioner", "2026-02-20T09:00:00+01:00", "admin",
        practitioner_id="nurse-lind", name="Tove Lind", role="nurse",
        license_number="L-2", license_expires_on="2026-04-20"),
    # C-1: given with a caution, the second session sooner than allowed, then a severe
    # reaction reviewed after 72 hours.
    cmd("open_course", "2026-03-01T09:00:00+01:00", "desk", course_id="C-1",
        patient_ref="P-1", indication="skin_rejuvenation",
        patient={"name": "Jeanne Martin", "birth_date": "1984-03-12"}),
    cmd("record_consultation", "2026-03-01T09:30:00+01:00", course_id="C-1", consent=True,
        screening={**SCREENING, "diabetes": True}),
    give("C-1", "2026-03-02T10:00:00+01:00"),
    give("C-1", "2026-03-10T10:00:00+01:00",
         spacing_override_reason="Patient travels abroad for a month"),
    cmd("report_reaction", "2026-03-11T10:00:00+01:00", "nurse-lind", course_id="C-1",
        session_no=2, kind="nodules", severity=3, notes="Sister's wedding worries"),
    cmd("review_reaction", "2026-03-14T10:00:00+01:00", course_id="C-1", session_no=2,
        decision="continue"),
    # C-2: given under a pregnancy override, then never again: overdue by April.
    cmd("open_course", "2026-03-01T11:00:00+01:00", "desk", course_id="C-2",
        patient_ref="P-2", indication="skin_rejuvenation"),
    cmd("record_consultation", "2026-03-01T11:30:00+01:00", course_id="C-2", consent=True,
        screening={**SCREENING, "pregnant": True}),
    cmd("override_contraindication", "2026-03-01T11:45:00+01:00", course_id="C-2",
        code="PREGNANCY", justification="Negative blood test this morning, lab ref 4471"),
    give("C-2", "2026-03-03T10:00:00+01:00"),
]
EXPECTED = Counter([
    ("GIVEN_WITH_CAUTIONS", "C-1", 1), ("GIVEN_WITH_CAUTIONS", "C-1", 2),
    ("SPACING_OVERRIDDEN", "C-1", 2), ("SEVERE_REACTION", "C-1", 2),
    ("REACTION_UNREVIEWED", "C-1", 2), ("CONTRAINDICATION_OVERRIDDEN", "C-2", 1),
    ("OVERDUE", "C-2", 2), ("LICENSE_EXPIRING", None, None)])


def coursebook(store: Path | str, *args: str,
               json_output: bool = True) -> subprocess.CompletedProcess[str]:
    options = ["--format", "json"] if json_output else []
    return subprocess.run([COURSEBOOK, "--db", str(store), *options, *args],
                          capture_output=True, text=True, timeout=60, check=False)


def build_store(target: str, directory: Path) -> str:
    assert coursebook(target, "init", "--timezone", "Europe/Paris", "--catalogue",
                      "default@1").returncode == 0
    commands = directory / "history.jsonl"
    commands.write_text("\n".join(json.dumps(c) for c in HISTORY) + "\n", encoding="utf-8")
    result = coursebook(target, "import", str(commands))
    assert result.returncode == 0, result.stdout
    assert json.loads(result.stdout)["applied"] == len(HISTORY)
    return target


@pytest.fixture(scope="module")
def store(module_target: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The history, on each persistent kind (SQLite file, PostgreSQL schema)."""
    return build_store(module_target, tmp_path_factory.mktemp("compliance"))


class TestComplianceJson:
    def test_prints_the_contract_document_with_every_finding_as_of_the_moment(
            self, store: str):
        result = coursebook(store, "compliance", "--as-of", AS_OF)
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["as_of"] == "2026-04-01T10:00:00Z"
        assert document["courses"] == 2
        found = Counter((f["code"], f["course_id"], f["session_no"])
                        for f in document["findings"])
        assert found == EXPECTED
        ats = [(f["at"], f["course_id"] or "") for f in document["findings"]]
        assert ats == sorted(ats)

    def test_known_at_before_the_history_was_recorded_finds_nothing(self, store: str):
        result = coursebook(store, "compliance", "--as-of", AS_OF,
                            "--known-at", "2026-01-01T00:00:00Z")
        assert json.loads(result.stdout) == {"as_of": "2026-04-01T10:00:00Z", "courses": 0,
                                             "findings": []}

    def test_the_document_holds_no_personal_data(self, store: str):
        result = coursebook(store, "compliance", "--as-of", AS_OF)
        for text in PERSONAL:
            assert text.casefold() not in result.stdout.casefold()

    def test_a_local_time_the_clocks_skip_is_a_usage_error(self, store: str):
        # Without an offset a time is local to the clinic (Europe/Paris); 02:30 on the day
        # the clocks go forward never happens there.
        assert coursebook(store, "compliance", "--as-of", "2026-03-29T02:30:00").returncode == 2

    def test_a_target_without_a_store_exits_4(self, tmp_path: Path):
        assert coursebook(tmp_path / "none.db", "compliance").returncode == 4


class TestComplianceTable:
    def test_the_table_counts_findings_by_code_and_severity_then_lists_them(
            self, store: str):
        result = coursebook(store, "compliance", "--as-of", AS_OF, json_output=False)
        assert result.returncode == 0, result.stderr
        # Not a terminal: tab-separated rows.
        assert "GIVEN_WITH_CAUTIONS\tinfo\t2\n" in result.stdout
        assert "REACTION_UNREVIEWED\tviolation\t1\n" in result.stdout
        assert "Patient travels abroad for a month" in result.stdout
        for text in PERSONAL:
            assert text.casefold() not in result.stdout.casefold()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page, from a SQLite store (the store kind does not change the page)."""
    directory = tmp_path_factory.mktemp("compliance-page")
    store = build_store(str(directory / "store.db"), directory)
    path = directory / "compliance.html"
    result = coursebook(store, "compliance", "--as-of", AS_OF, "--html", str(path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["courses"] == 2  # the JSON is still printed
    return path


class TestCompliancePage:
    def test_the_page_is_self_contained(self, page: Path):
        html = page.read_text(encoding="utf-8")
        assert re.findall(r"<script[^>]*>", html) == [  # inline only: nothing is fetched
            '<script type="application/json" id="page-data">', "<script>"]
        assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)
        assert "fetch(" not in html
        assert "XMLHttpRequest" not in html
        assert "<link" not in html
        assert "@import" not in html

    def test_the_page_shows_counts_findings_and_one_timeline_per_course_with_findings(
            self, page: Path):
        html = page.read_text(encoding="utf-8")
        drawn = page_data(html)["c"]  # what opening each course draws
        assert sorted(drawn) == ["C-1", "C-2"]
        assert html.count("<details class=\"course row") == 2
        assert "Negative blood test this morning, lab ref 4471" in json.dumps(drawn)
        kinds = [s[2] for course in drawn.values() for s in course[3]["s"]]
        assert kinds.count(1) == 1  # one session given sooner under a spacing override

    def test_the_page_holds_no_personal_data_but_the_patient_ref(self, page: Path):
        html = page.read_text(encoding="utf-8")
        assert "P-1" in html
        for text in PERSONAL:
            assert text.casefold() not in html.casefold()

    def test_an_unwritable_html_path_is_a_usage_error(self, store: str, tmp_path: Path):
        result = coursebook(store, "compliance", "--html", str(tmp_path / "no" / "page.html"))
        assert result.returncode == 2


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian: apt-get install -y chromium)")


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True,
                          timeout=120, check=False)


@needs_chromium
@pytest.mark.slow
class TestCompliancePageInChromium:
    def test_opening_a_course_draws_its_findings_and_timeline_without_console_errors(
            self, page: Path, tmp_path: Path):
        doms = {}
        for course_id in ("C-1", "C-2"):  # #course-ID opens that course, as a click does
            result = chromium(tmp_path / "profile", "--dump-dom",
                              f"{page.as_uri()}#course-{course_id}")
            assert result.returncode == 0, result.stderr[-2000:]
            console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
            assert console == []
            doms[course_id] = result.stdout.split('<script type="application/json"')[0]
        for course_id, dom in doms.items():
            assert dom.count('<svg class="timeline"') == 1
            assert f'data-course="{course_id}"' in dom
        assert doms["C-1"].count('class="session ') == 2  # sessions 1 and 2
        assert doms["C-2"].count('class="session ') == 1
        assert doms["C-1"].count('class="session overridden"') == 1
        both = "".join(doms.values())
        assert "Negative blood test this morning, lab ref 4471" in both
        assert 'class="review late"' in both
        assert 'class="overdue"' in both

    def test_a_closed_course_is_not_drawn(self, page: Path, tmp_path: Path):
        result = chromium(tmp_path / "profile", "--dump-dom", page.as_uri())
        assert result.returncode == 0, result.stderr[-2000:]
        assert "<svg" not in result.stdout
        assert 'id="course-C-1"' in result.stdout

    def test_a_screenshot_of_the_page_can_be_taken(self, page: Path, tmp_path: Path):
        shot = tmp_path / "compliance.png"
        result = chromium(tmp_path / "profile", f"--screenshot={shot}",
                          "--window-size=1280,2000", page.as_uri())
        assert result.returncode == 0, result.stderr[-2000:]
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
