"""Unit tests drive the engine in memory (eventsourcing's POPO recorder): no I/O."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coursebook.clock import FixedClock
from tests.builders import Clinic
from tests.stores import make_app


@pytest.fixture
def clinic(clock: FixedClock, tmp_path: Path) -> Iterator[Clinic]:
    app = make_app("memory", tmp_path, clock)
    yield Clinic(app)
    app.close()


@pytest.fixture
def clinic2(clock: FixedClock, tmp_path: Path) -> Iterator[Clinic]:
    """The same clinic, its store under `default@2` (the safety parameters on)."""
    app = make_app("memory", tmp_path, clock, catalogue="default@2")
    yield Clinic(app)
    app.close()
