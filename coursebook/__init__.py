"""coursebook: an event-sourced engine for aesthetic-clinic treatment courses.

The public surface is small: the application service, its outcome and error types, and
the clocks. Everything else is reachable through its module but may change.
"""

from __future__ import annotations

from coursebook.application import Coursebook, Outcome
from coursebook.clock import Clock, FixedClock, SystemClock
from coursebook.errors import Code, CoursebookError, Rejected, StoreUnavailable

__all__ = ["Clock", "Code", "Coursebook", "CoursebookError", "FixedClock", "Outcome",
           "Rejected", "StoreUnavailable", "SystemClock"]
