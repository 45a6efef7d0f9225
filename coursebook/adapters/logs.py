"""structlog set-up: one structured line per command, on standard error (or a file).

JSON when standard error is not a terminal, readable key=value when it is. Standard output
is left for the `--format json` document alone. Callers never pass personal data here:
only command names, ids, codes, fields and numbers.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

__all__ = ["configure_logging"]


def configure_logging(*, stream: TextIO | None = None, json: bool | None = None,
                      level: int = logging.INFO) -> None:
    out = stream or sys.stderr
    as_json = json if json is not None else not out.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json
        else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
