"""coursebook: an event-sourced engine for aesthetic-clinic treatment courses.

The public surface is small: the application service, its outcome and error types, and
the clocks. Everything else is reachable through its module but may change.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from coursebook.clock import Clock, FixedClock, SystemClock
from coursebook.errors import Code, CoursebookError, Rejected, StoreUnavailable

if TYPE_CHECKING:
    from coursebook.service.application import Coursebook, Outcome

# A library logs, the host decides where to: without this handler, a host that configured
# nothing would get the warnings on standard error from Python's last-resort handler.
# See coursebook/logs.py and docs/embedding.md.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["Clock", "Code", "Coursebook", "CoursebookError", "FixedClock", "Outcome",
           "Rejected", "StoreUnavailable", "SystemClock"]


def __getattr__(name: str) -> Any:
    """The application (and with it the event store library) is imported on first use, so
    `import coursebook.adapters.entrypoints.cli` and `coursebook --help` stay quick."""
    if name in ("Coursebook", "Outcome"):
        from coursebook.service import application

        return getattr(application, name)
    raise AttributeError(f"module 'coursebook' has no attribute {name!r}")
