"""Fixtures shared by every layer: a fixed clock, and an application on each store kind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from coursebook.application import Coursebook
from coursebook.clock import FixedClock
from tests.stores import START, STORE_KINDS, make_app

# CI replays the same examples every run (a red build must be reproducible); locally,
# hypothesis explores new ones and keeps failures in .hypothesis/ to replay them.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def app(store_kind: str, tmp_path: Path, clock: FixedClock) -> Iterator[Coursebook]:
    application = make_app(store_kind, tmp_path, clock)
    yield application
    application.close()
