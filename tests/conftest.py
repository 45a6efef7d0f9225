"""Fixtures shared by every layer: a fixed clock, and an application on each store kind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from coursebook.clock import FixedClock
from coursebook.service.application import Coursebook
from tests import pg
from tests.stores import START, STORE_KINDS, make_app, params, release

# CI replays the same examples every run (a red build must be reproducible); locally,
# hypothesis explores new ones and keeps failures in .hypothesis/ to replay them.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests that need the PostgreSQL server skip (fail under CI=true) without it."""
    if item.get_closest_marker("postgres") is not None:
        pg.require()


def pytest_sessionfinish(session: pytest.Session) -> None:
    pg.finish()  # drops this session's database, if one was made


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(params=params(STORE_KINDS))
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def app(store_kind: str, tmp_path: Path, clock: FixedClock) -> Iterator[Coursebook]:
    application = make_app(store_kind, tmp_path, clock)
    yield application
    application.close()
    release(store_kind, tmp_path)
