"""Logging: standard `logging` records for the host, rendered by structlog on the command line.

The library logs through the standard `logging` module, on the logger `coursebook` and its
children (`coursebook.cli`, `coursebook.projections`). The package logger has a
`NullHandler` (added when `coursebook` is imported), so a host that configures nothing
sees nothing: no line on standard output or standard error, not even a warning through
Python's last-resort handler. A host routes the records where it wants by configuring
`logging.getLogger("coursebook")` (level and handlers) or the root logger.

Each event is ONE record: `record.coursebook` holds the structured fields
(`{"event": "command", "command": ..., "command_id": ..., "outcome": ..., ...}`), and the
message, built only if a handler formats it, reads `command command=open_course
outcome=applied ...` (fields whose value is None left out). Callers never pass personal
data here: only command names, ids, codes, fields and numbers.

`configure_logging` is for the command line alone (the process owner): it attaches one
handler to `coursebook` that renders the records with structlog, as JSON when its stream
is not a terminal and as key=value when it is, and stops them propagating to the root.
structlog is imported when that handler writes its first line, not before: `import
structlog` also imports its development console (rich, asyncio), about a third of the
command line's start-up, and a query such as `course show` never logs. The library path
never imports structlog.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

__all__ = ["FIELDS", "ROOT", "Logger", "configure_logging", "get_logger", "reset_logging"]

ROOT = "coursebook"
"""The package logger's name; every logger of the library is it or one of its children."""
FIELDS = "coursebook"
"""The attribute of each record holding its structured fields, `event` included."""


class _Message:
    """A record's message, rendered as `event key=value ...` only when formatted."""

    __slots__ = ("event", "fields")

    def __init__(self, event: str, fields: dict[str, Any]) -> None:
        self.event = event
        self.fields = fields

    def __str__(self) -> str:
        parts = [self.event]
        parts.extend(f"{key}={_value_text(value)}" for key, value in self.fields.items()
                     if value is not None)
        return " ".join(parts)

    def __repr__(self) -> str:
        return repr(str(self))


def _value_text(value: Any) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in "\"'=" for c in text):
        return repr(text)
    return text


class Logger:
    """A named logger whose `.debug/.info/.warning/.error(event, **fields)` emit one
    record."""

    __slots__ = ("_logger",)

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    @property
    def name(self) -> str:
        return self._logger.name

    def debug(self, event: str, **fields: Any) -> None:
        if self._logger.isEnabledFor(logging.DEBUG):
            self._emit(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        if self._logger.isEnabledFor(logging.INFO):
            self._emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        if self._logger.isEnabledFor(logging.WARNING):
            self._emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        if self._logger.isEnabledFor(logging.ERROR):
            self._emit(logging.ERROR, event, fields)

    def _emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        # stacklevel 3: the record names the caller of debug/info/..., not this module.
        self._logger.log(level, _Message(event, fields),
                         extra={FIELDS: {"event": event, **fields}}, stacklevel=3)


def get_logger(name: str) -> Logger:
    """The logger `name`, which must be `coursebook` or under it (`coursebook.cli`)."""
    if name != ROOT and not name.startswith(ROOT + "."):
        raise ValueError(f"coursebook logs under {ROOT!r}, not {name!r}")
    return Logger(name)


# ---------------------------------------------------------------- the command line only


class _CommandLineHandler(logging.Handler):
    """One line per record on a stream (standard error by default), rendered by structlog.

    The formatters are built on the first line written, which is when structlog is
    imported. Without a stream of its own, the handler writes to the `sys.stderr` of the
    moment, as a command line run in-process (click's test runner) expects.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stream: TextIO | None = None
        self.json: bool | None = None
        self._formatters: dict[bool, logging.Formatter] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            out = self.stream if self.stream is not None else sys.stderr
            as_json = self.json if self.json is not None else not out.isatty()
            formatter = self._formatters.get(as_json)
            if formatter is None:
                formatter = self._formatters[as_json] = _structlog_formatter(as_json)
            out.write(formatter.format(record) + "\n")
            out.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def _structlog_formatter(as_json: bool) -> logging.Formatter:
    import structlog

    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_text) if as_json
        else structlog.dev.ConsoleRenderer(colors=False))
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            _record_fields,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )


def _record_fields(logger: Any, method_name: str, event_dict: Any) -> Any:
    """The record's structured fields as structlog's event dict, in place of its message
    (a record logged without them, `logging.getLogger("coursebook.x").info("...")`, keeps
    its message as the event)."""
    fields = getattr(event_dict.get("_record"), FIELDS, None)
    if isinstance(fields, dict):
        event_dict.update(fields)
    return event_dict


def _orjson_text(event: Any, **_: Any) -> str:
    """structlog's JSON serializer, with orjson (the engine's JSON library throughout)."""
    import orjson

    return orjson.dumps(event, default=str).decode()


def configure_logging(*, stream: TextIO | None = None, json: bool | None = None,
                      level: int = logging.INFO) -> None:
    """For the command line: the `coursebook` logger's records at `level` and above go to
    `stream` (standard error by default), as JSON if `json` (default: when the stream is
    not a terminal), else key=value, and no longer to the root logger. Called again, it
    changes the one handler's settings (idempotent)."""
    logger = logging.getLogger(ROOT)
    handler = next((h for h in logger.handlers if isinstance(h, _CommandLineHandler)),
                   None)
    if handler is None:
        handler = _CommandLineHandler()
        logger.addHandler(handler)
    handler.stream, handler.json = stream, json
    logger.setLevel(level)
    logger.propagate = False


def reset_logging() -> None:
    """Undoes `configure_logging`: the handler removed, the level and propagation as a
    host that configured nothing has them."""
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if isinstance(h, _CommandLineHandler)]:
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
