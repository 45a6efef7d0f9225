"""Integration tests: several processes on one store (SQLite file or PostgreSQL schema).

Each test reports what it observed (conflicts, duplicates, kills) through `observed`;
the lines are printed at the end of the run, so CI logs show that races really happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.stores import PERSISTENT_KINDS, params, release, target

OBSERVATIONS: list[str] = []


@pytest.fixture(params=params(PERSISTENT_KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def shared_target(kind: str, tmp_path: Path) -> Iterator[str]:
    """Where the processes of one test meet (nothing is there yet)."""
    yield target(kind, tmp_path)
    release(kind, tmp_path)


@pytest.fixture
def observed(request: pytest.FixtureRequest) -> Callable[[str], None]:
    def note(line: str) -> None:
        OBSERVATIONS.append(f"{request.node.name}: {line}")
    return note


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if OBSERVATIONS:
        terminalreporter.section("integration: what the concurrency and crash tests saw")
        for line in OBSERVATIONS:
            terminalreporter.write_line(line)
