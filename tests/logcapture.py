"""The library's log records, captured in tests through the standard `logging` module.

`capture_logs()` stands in for `structlog.testing.capture_logs`: it yields a list that
receives one dict per record logged under `coursebook`, shaped as structlog's capture
(`{"event": ..., "log_level": "info", **fields}`). `pristine_logging()` gives the
`coursebook` logger as a host that configured nothing finds it (a test run before may have
configured the command line's handler in this process), and restores it afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from coursebook.logs import FIELDS, ROOT, reset_logging

__all__ = ["capture_logs", "pristine_logging"]


class _ListHandler(logging.Handler):
    def __init__(self, events: list[dict[str, Any]]) -> None:
        super().__init__(logging.DEBUG)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, FIELDS, None) or {"event": record.getMessage()}
        self.events.append({**fields, "log_level": record.levelname.lower()})


@contextmanager
def _saved(logger: logging.Logger) -> Iterator[None]:
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    try:
        yield
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@contextmanager
def capture_logs() -> Iterator[list[dict[str, Any]]]:
    """Every record of the `coursebook` loggers, at any level, and only here while it
    lasts (no other handler, no propagation), as structlog's capture had it."""
    logger = logging.getLogger(ROOT)
    events: list[dict[str, Any]] = []
    with _saved(logger):
        logger.handlers[:] = [_ListHandler(events)]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        yield events


@contextmanager
def pristine_logging() -> Iterator[logging.Logger]:
    """The `coursebook` logger as after `import coursebook` in a fresh process: its
    NullHandler alone, no level, propagating to the root."""
    logger = logging.getLogger(ROOT)
    with _saved(logger):
        reset_logging()
        yield logger
