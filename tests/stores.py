"""The store kinds every application test runs on, and how to build an app on each.

The list lives here and only here: adding a backend means adding its name to
`STORE_KINDS` and a branch to `make_app`, `reopen` and `release`. Tests marked
`postgres` (see `params`) need the server of `tests.pg`: they skip when it is
unreachable, and fail under `CI=true`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock
from coursebook.service.application import Coursebook
from tests import pg

__all__ = ["CLINIC_ZONE", "PERSISTENT_KINDS", "PG_TEST_ENV", "START", "STORE_KINDS",
           "make_app", "params", "release", "reopen", "target"]

STORE_KINDS = ["memory", "sqlite", "postgres"]
PERSISTENT_KINDS = [kind for kind in STORE_KINDS if kind != "memory"]
"""The kinds whose stored events a second application can open (see `reopen`)."""
START = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
CLINIC_ZONE = "Europe/Paris"
PG_TEST_ENV = {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "1"}
"""Small pools: a test's application makes one connection, at most two."""

_targets: dict[str, str] = {}


def params(kinds: list[str]) -> list[Any]:
    """`kinds` as pytest parameters, those needing the PostgreSQL server marked so."""
    return [pytest.param(kind, marks=pytest.mark.postgres) if kind == "postgres" else kind
            for kind in kinds]


def target(kind: str, tmp_path: Path) -> str:
    """Where the store of `kind` for the test owning `tmp_path` lives."""
    if kind == "sqlite":
        return str(tmp_path / "store.db")
    if kind == "postgres":
        key = str(tmp_path)
        if key not in _targets:
            _targets[key] = pg.new_target()
        return _targets[key]
    raise ValueError(f"store kind {kind!r} has no target")


def make_app(kind: str, tmp_path: Path, clock: FixedClock,
             timezone: str = CLINIC_ZONE, catalogue: str = "default@1",
             **options: Any) -> Coursebook:
    """A fresh, initialised store of `kind`, recording with `clock`, under `catalogue`
    (default `default@1`: the tests of the rules of version 1 keep their answers; the
    tests of `default@2` ask for it); `options` go to `Coursebook` (e.g.
    `views="worker"`)."""
    if kind == "memory":
        app = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock,
                         **options)
    elif kind == "sqlite":
        app = open_store(target(kind, tmp_path), create=True, clock=clock, **options)
    elif kind == "postgres":
        app = open_store(target(kind, tmp_path), create=True, clock=clock,
                         extra_env=PG_TEST_ENV, **options)
    else:
        raise ValueError(f"unknown store kind {kind!r}")
    app.initialise(timezone, catalogue)
    return app


def reopen(kind: str, tmp_path: Path, clock: FixedClock) -> Coursebook | None:
    """A second application over the same stored events (None when the kind keeps none)."""
    if kind == "sqlite":
        return open_store(target(kind, tmp_path), clock=clock)
    if kind == "postgres":
        return open_store(target(kind, tmp_path), clock=clock, extra_env=PG_TEST_ENV)
    return None


def release(kind: str, tmp_path: Path) -> None:
    """Frees what the store of `kind` holds outside `tmp_path` (a PostgreSQL schema)."""
    if kind == "postgres":
        found = _targets.pop(str(tmp_path), None)
        if found is not None:
            pg.drop_schema(found)
