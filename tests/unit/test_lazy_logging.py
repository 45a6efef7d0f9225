"""The log set-up defers `import structlog` to the first line, and loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from coursebook.logs import configure_logging, get_logger
configure_logging(stream=sys.stdout, json=True)
print("imported" if "structlog" in sys.modules else "deferred")
get_logger("coursebook").info("command", command="open_course", version=1)
"""


def test_the_first_line_applies_the_configuration_made_before_structlog_was_imported() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          check=True)
    first, line = done.stdout.splitlines()
    assert first == "deferred"
    entry = json.loads(line)
    assert entry["event"] == "command"
    assert entry["level"] == "info"
    assert entry["command"] == "open_course"
    assert entry["version"] == 1
    assert entry["timestamp"].endswith("Z")


def test_a_query_on_the_command_line_does_not_import_structlog(tmp_path: Path) -> None:
    store = str(tmp_path / "store.db")
    cli = [sys.executable, "-m", "coursebook.adapters.entrypoints.cli", "--db", store]
    subprocess.run([*cli, "init", "--timezone", "Europe/Paris"], capture_output=True,
                   check=True)
    script = """
import sys
from coursebook.adapters.entrypoints.cli import main
sys.argv = ["coursebook", "--db", sys.argv[1], "course", "show", "C-404"]
try:
    main()
except SystemExit as exit:
    print("exit", exit.code)
print("structlog" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script, store], capture_output=True,
                          text=True, check=True)
    exit_line, imported = done.stdout.strip().splitlines()[-2:]
    assert exit_line != "exit 0"  # no such course: answered, not crashed
    assert "NOT_FOUND" in done.stderr or "NOT_FOUND" in done.stdout
    assert imported == "False"
