"""The store kinds every application test runs on, and how to build an app on each.

The list lives here and only here: adding a backend (e.g. "postgres") means adding its
name to `STORE_KINDS` and a branch to `make_app`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from coursebook.adapters.persistence import open_store
from coursebook.application import Coursebook
from coursebook.clock import FixedClock

__all__ = ["CLINIC_ZONE", "PERSISTENT_KINDS", "START", "STORE_KINDS", "make_app", "reopen"]

STORE_KINDS = ["memory", "sqlite"]
PERSISTENT_KINDS = [kind for kind in STORE_KINDS if kind != "memory"]
"""The kinds whose stored events a second application can open (see `reopen`)."""
START = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
CLINIC_ZONE = "Europe/Paris"


def make_app(kind: str, tmp_path: Path, clock: FixedClock,
             timezone: str = CLINIC_ZONE) -> Coursebook:
    """A fresh, initialised store of `kind`, recording with `clock`."""
    if kind == "memory":
        app = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    elif kind == "sqlite":
        app = open_store(str(tmp_path / "store.db"), create=True, clock=clock)
    else:
        raise ValueError(f"unknown store kind {kind!r}")
    app.initialise(timezone)
    return app


def reopen(kind: str, tmp_path: Path, clock: FixedClock) -> Coursebook | None:
    """A second application over the same stored events (None when the kind keeps none)."""
    if kind == "sqlite":
        return open_store(str(tmp_path / "store.db"), clock=clock)
    return None
