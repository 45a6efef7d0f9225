"""What every sub-command shares: the target, the output format, exit codes, errors."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, TextIO

import attrs
import click
import orjson

from coursebook.errors import CoursebookError, Rejected, StoreUnavailable, Tampered

if TYPE_CHECKING:  # imported where used: `--help` and JSON output need none of them
    from rich.console import Console
    from rich.table import Table

    from coursebook import Coursebook

__all__ = ["EXIT_OK", "EXIT_REJECTED", "EXIT_STORE", "EXIT_TAMPERED", "EXIT_USAGE", "Context",
           "check_export_path", "emit", "run", "timestamp_option_value", "user_error",
           "write_export"]

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_TAMPERED, EXIT_STORE = 0, 1, 2, 3, 4
EXIT_INTERNAL = 70



class UserError(click.ClickException):
    """A message for the user and an exit code, without a traceback."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.code = exit_code


def user_error(message: str, exit_code: int = EXIT_USAGE) -> UserError:
    return UserError(message, exit_code)


def write_export(option: str, path: str, content: str | bytes, what: str, *,
                 force: bool = False) -> None:
    """Writes an export asked for by `option` (e.g. `--csv`) and says so on stderr; a
    path refused (the store's own files, a symbolic link, an existing file without
    `--force`: adapters/entrypoints/export_files.py) or unwritable is a usage error
    naming the option."""
    from coursebook.adapters.entrypoints.export_files import ExportRefused
    from coursebook.adapters.entrypoints.export_files import write_export as write_file

    try:
        write_file(path, content, _current_target(), force=force, option=option)
    except ExportRefused as error:
        raise user_error(error.message) from None
    except OSError as error:
        raise user_error(f"{option}: cannot write {path}: "
                         f"{error.strerror or type(error).__name__}") from None
    click.echo(f"coursebook: wrote {what} to {path}", err=True)


def check_export_path(option: str, path: str, *, force: bool = False) -> None:
    """Refuses, before any work, a path `write_export` would refuse (exit 2)."""
    from coursebook.adapters.entrypoints.export_files import ExportRefused, check_export

    try:
        check_export(path, _current_target(), force=force, option=option)
    except ExportRefused as error:
        raise user_error(error.message) from None


def _current_target() -> str | None:
    obj = click.get_current_context(silent=True)
    context = None if obj is None else obj.find_object(Context)
    return None if context is None else context.target


@attrs.define
class Context:
    target: str
    output_format: str
    log_stream: IO[str] | None = None

    @classmethod
    def create(cls, target: str | None, output_format: str, log_file: str | None) -> Context:
        from coursebook.bootstrap import resolve_target
        from coursebook.logs import configure_logging

        resolved = resolve_target(target)
        stream = None
        if log_file is not None:
            stream = _open_log_file(log_file, resolved)
        configure_logging(stream=stream)
        return cls(resolved, output_format, stream)

    @property
    def json(self) -> bool:
        return self.output_format == "json"

    @contextmanager
    def store(self, **kwargs: Any) -> Iterator[Coursebook]:
        from coursebook.bootstrap import open_store

        try:
            app = open_store(self.target, **kwargs)
        except StoreUnavailable as error:
            raise user_error(str(error), EXIT_STORE) from None
        try:
            yield app
        finally:
            app.close()


def _open_log_file(path: str, store: str) -> TextIO:
    """Appends to `path`: never the store's own files, never through a symbolic link."""
    import os

    from coursebook.adapters.entrypoints.export_files import ExportRefused, check_log_file

    try:
        check_log_file(path, store)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT |
                     getattr(os, "O_NOFOLLOW", 0), 0o600)
    except ExportRefused as error:
        raise user_error(error.message) from None
    except OSError as error:
        raise user_error(f"--log-file: cannot write {path}: "
                         f"{error.strerror or type(error).__name__}") from None
    return open(fd, "a", encoding="utf-8")


def dumps(document: Any) -> str:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


def emit(ctx: Context, document: Any, render: Callable[[Console], None] | None = None) -> None:
    """Prints the JSON document, or its human rendering on a terminal-friendly console."""
    if ctx.json or render is None:
        click.echo(dumps(document))
        return
    from rich.console import Console

    render(Console(soft_wrap=False))


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    from rich.table import Table

    out = Table(title=title, show_lines=False)
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*["" if cell is None else str(cell) for cell in row])
    return out


def not_found(ctx: Context, error: Rejected) -> None:
    """Queries about something that does not exist: exit 1 with the code."""
    if ctx.json:
        click.echo(dumps({"code": str(error.code), "message": error.message}))
    else:
        click.echo(f"{error.code}: {error.message}", err=True)
    raise SystemExit(EXIT_REJECTED)


def timestamp_option_value(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    from coursebook import parse_timestamp

    try:
        return parse_timestamp(value, option)
    except Rejected as error:
        raise user_error(error.message) from None  # the message names the option


def run(command: click.Command) -> int:
    """Runs the CLI and turns every outcome into an exit code, never a traceback."""
    try:
        command.main(standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except UserError as error:
        click.echo(f"coursebook: {error.message}", err=True)
        return error.code
    except click.ClickException as error:
        error.show()
        return EXIT_USAGE
    except click.exceptions.Abort:
        return EXIT_USAGE
    except SystemExit as done:
        return int(done.code or 0)
    except StoreUnavailable as error:
        click.echo(f"coursebook: {error}", err=True)
        return EXIT_STORE
    except Tampered as error:  # an answer would rest on a changed record: none is given
        click.echo(f"coursebook: {error}", err=True)
        return EXIT_TAMPERED
    except CoursebookError as error:
        click.echo(f"coursebook: {error}", err=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # the store's own errors, then the last line of defence
        # Imported here: start-up (and `--help`) need none of the persistence modules.
        from eventsourcing.persistence import (
            InterfaceError,
            MapperDeserialisationError,
            OperationalError,
        )

        if isinstance(error, OperationalError | InterfaceError):  # gone away mid-query
            click.echo(f"coursebook: the store stopped answering ({type(error).__name__}); "
                       "nothing partial is recorded, and a command sent again with its "
                       "command_id applies at most once", err=True)
            return EXIT_STORE
        if isinstance(error, MapperDeserialisationError):  # tampered beyond decoding
            from coursebook.bootstrap import DAMAGED

            click.echo(f"coursebook: {DAMAGED}", err=True)
            return EXIT_STORE
        from coursebook.logs import get_logger

        get_logger("coursebook.cli").error("internal_error", error=type(error).__name__)
        click.echo(f"coursebook: internal error ({type(error).__name__}); nothing partial "
                   "was recorded for the command being applied", err=True)
        return EXIT_INTERNAL
    return EXIT_OK


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
