"""`coursebook compliance --what-if REF` on the command line, on a SQLite file and a
PostgreSQL database: the document, the table and the page say it is a what-if, and
nothing is recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_compliance_cli import AS_OF, PERSONAL, build_store, coursebook


@pytest.fixture(scope="module")
def store(module_target: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_store(module_target, tmp_path_factory.mktemp("what-if"))


def test_the_document_table_and_page_of_a_what_if(store: str, tmp_path: Path) -> None:
    before = coursebook(store, "verify")
    page = tmp_path / "what-if.html"
    result = coursebook(store, "compliance", "--as-of", AS_OF, "--what-if", "default@1",
                        "--html", str(page))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["what_if"]["catalogue"]["name"] == "default"
    assert set(document["what_if"]) == {"catalogue", "added", "removed", "not_covered"}
    html = page.read_text(encoding="utf-8")
    assert "<title>WHAT-IF under default@1" in html
    assert "WHAT-IF &mdash; NOT THE RECORDED REPORT" in html
    table = coursebook(store, "compliance", "--as-of", AS_OF, "--what-if", "default@2",
                       json_output=False)
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith("WHAT-IF under default@2 (not the recorded report)")
    assert "added by the what-if:" in table.stdout
    for text in PERSONAL:
        assert text.casefold() not in (result.stdout + table.stdout + html).casefold()
    after = coursebook(store, "verify")
    assert json.loads(after.stdout)["events"] == json.loads(before.stdout)["events"]


def test_an_unknown_catalogue_is_a_usage_error(store: str) -> None:
    result = coursebook(store, "compliance", "--what-if", "nothing@7")
    assert result.returncode == 2
    assert "catalogue" in result.stderr
