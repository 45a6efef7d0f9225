"""The import directions of docs/architecture.md, checked by import-linter against the
contracts in pyproject.toml: entry points > assembly > service > storage > projections >
domain, and entry points only through the public API."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` run on the package found at `root`, with `root`'s contracts."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
         "sys.exit(lint_imports(no_cache=True))"],
        cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=False)


def test_every_module_imports_only_in_the_allowed_directions() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_domain_module_importing_the_service_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "coursebook", tmp_path / "coursebook",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    values = tmp_path / "coursebook" / "domain" / "values.py"
    values.write_text(values.read_text() + "\nimport coursebook.service.application\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "coursebook.domain.values -> coursebook.service.application" in result.stdout


def test_an_entry_point_reaching_into_storage_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "coursebook", tmp_path / "coursebook",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    demo = tmp_path / "coursebook" / "adapters" / "entrypoints" / "demo.py"
    demo.write_text(demo.read_text() + "\nimport coursebook.adapters.storage.keys\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "coursebook.adapters.entrypoints.demo -> coursebook.adapters.storage.keys" in \
        result.stdout
