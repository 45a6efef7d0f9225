"""Command-line tests on each persistent store kind: a SQLite file or a PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stores import PERSISTENT_KINDS, params, release, target


@pytest.fixture(params=params(PERSISTENT_KINDS))
def new_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a new store may be made (`--db` value): nothing is there yet."""
    kind: str = request.param
    yield target(kind, tmp_path)
    release(kind, tmp_path)


@pytest.fixture(scope="module", params=params(PERSISTENT_KINDS))
def module_target(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like `new_target`, shared by the tests of one module (for read-only queries)."""
    kind: str = request.param
    directory = tmp_path_factory.mktemp(f"e2e-{kind}")
    yield target(kind, directory)
    release(kind, directory)
