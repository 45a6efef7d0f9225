"""README.md's "From Python" section runs as written.

Its ```python blocks continue one another: they are joined, in order, into one program,
run in a fresh empty directory by a separate interpreter with no `COURSEBOOK_*`
variable set (the store and its key file are made there, as the README says). The
snippets check themselves with `assert`; they print nothing, and neither may the library.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "### From Python"


def section(text: str, heading: str) -> str:
    """The text under `heading`, up to the next heading of the same or a higher level
    (lines inside fenced code, such as Python comments, are not headings)."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines(keepends=True)
    start = lines.index(heading + "\n") + 1
    fenced = False
    for number in range(start, len(lines)):
        line = lines[number]
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(rf"#{{1,{level}}} ", line):
            return "".join(lines[start:number])
    return "".join(lines[start:])


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def blocks() -> list[str]:
    found = python_blocks(section(README.read_text(encoding="utf-8"), SECTION))
    assert found, f"no ```python block under {SECTION!r}"
    return found


def test_the_python_section_runs_as_written_in_an_empty_directory(
        blocks: list[str], tmp_path: Path) -> None:
    program = tmp_path / "readme_from_python.py"
    program.write_text("\n".join(blocks), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSEBOOK_")}
    result = subprocess.run([sys.executable, program.name], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")
    # What the README says it makes, it made.
    made = {path.name for path in tmp_path.iterdir()}
    assert {"clinic.db", "clinic.db.key", "today.jsonl", "head.json",
            "compliance.html"} <= made


def test_the_python_section_imports_only_the_public_surface(blocks: list[str]) -> None:
    code = "\n".join(blocks)
    ours = re.findall(r"^\s*(?:from|import) (coursebook\S*)", code, re.MULTILINE)
    assert ours, "the section imports nothing from coursebook"
    assert set(ours) == {"coursebook"}, ours


def test_the_readme_names_no_module_path_that_is_gone_nor_a_sibling_checkout() -> None:
    text = README.read_text(encoding="utf-8")
    for gone in ("coursebook/application.py", "adapters/persistence",
                 "coursebook.adapters.storage.persistence", "coursebook.errors",
                 "../shared", "CONTRACT"):
        assert gone not in text, gone
