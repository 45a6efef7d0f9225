"""Which of a course's events a time-travel question sees."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

__all__ = ["select_events"]


def select_events(events: Iterable[Any], *, version: int | None = None,
                  as_of: dt.datetime | None = None,
                  known_at: dt.datetime | None = None) -> list[Any]:
    """The events a time-travel question sees, in recording order."""
    selected = list(events)
    if version is not None:
        selected = selected[:version]
    if as_of is not None:
        selected = [e for e in selected if e.at <= as_of]
    if known_at is not None:
        selected = [e for e in selected if e.timestamp <= known_at]
    return selected
