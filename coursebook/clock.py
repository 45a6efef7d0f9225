"""Clocks: the one place the engine learns what time it is.

Commands carry their own `at` (valid time); the clock only stamps when an event was
recorded and judges `FUTURE_FACT`. Tests inject a `FixedClock` instead of patching time.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

__all__ = ["Clock", "FixedClock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The real clock (freezegun-friendly: it reads `datetime.now` at call time)."""

    def now(self) -> dt.datetime:
        now = dt.datetime.now(dt.UTC)
        # freezegun returns a FakeDatetime subclass; store a plain datetime.
        return dt.datetime(
            now.year, now.month, now.day, now.hour, now.minute, now.second,
            now.microsecond, tzinfo=dt.UTC,
        )


class FixedClock:
    """A clock that stands still until told to move (for tests and replays)."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._now = start.astimezone(dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, instant: dt.datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._now = instant.astimezone(dt.UTC)

    def advance(self, delta: dt.timedelta) -> None:
        self._now += delta
