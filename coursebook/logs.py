"""structlog set-up: one structured line per command, on standard error (or a file).

JSON when standard error is not a terminal, readable key=value when it is. Standard output
is left for the `--format json` document alone. Callers never pass personal data here:
only command names, ids, codes, fields and numbers.

structlog is imported on the first line logged, not before: `import structlog` also
imports its development console (rich, asyncio), about a third of the command line's
start-up, and a query such as `course show` never logs. `configure_logging` called before
that records the settings, which the first line applies.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

__all__ = ["LazyLogger", "configure_logging", "get_logger"]

_pending: dict[str, Any] | None = None


def configure_logging(*, stream: TextIO | None = None, json: bool | None = None,
                      level: int = logging.INFO) -> None:
    global _pending
    _pending = {"stream": stream, "json": json, "level": level}
    if "structlog" in sys.modules:
        _apply_pending()


def _apply_pending() -> None:
    global _pending
    if _pending is None:
        return
    settings, _pending = _pending, None
    import structlog

    out = settings["stream"] or sys.stderr
    as_json = settings["json"] if settings["json"] is not None else not out.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_text) if as_json
        else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(settings["level"]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def _orjson_text(event: Any, **_: Any) -> str:
    """structlog's JSON serializer, with orjson (the engine's JSON library throughout)."""
    import orjson

    return orjson.dumps(event, default=str).decode()


class LazyLogger:
    """A named structlog logger that imports structlog when it first logs a line.

    Each call goes through `structlog.get_logger`'s own proxy, so a later
    `structlog.configure` (or `structlog.testing.capture_logs`) takes effect at once.
    """

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def _resolve(self) -> Any:
        if self._logger is None:
            import structlog

            _apply_pending()
            self._logger = structlog.get_logger(self._name)
        return self._logger

    def info(self, event: str, **fields: Any) -> None:
        self._resolve().info(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._resolve().warning(event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._resolve().error(event, **fields)


def get_logger(name: str) -> LazyLogger:
    return LazyLogger(name)
