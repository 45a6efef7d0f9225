"""What every sub-command shares: the target, the output format, exit codes, errors."""

from __future__ import annotations

import datetime as dt
import re
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
           "Output", "check_export_path", "emit", "local_time", "plural", "run",
           "timestamp_option_value", "user_error", "write_export"]

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_TAMPERED, EXIT_STORE = 0, 1, 2, 3, 4
EXIT_INTERNAL = 70



class UserError(click.ClickException):
    """A message for the user and an exit code, without a traceback. The message starts
    with the option or field at fault (`--as-of: ...`); `hint` says what to do instead."""

    def __init__(self, message: str, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = exit_code
        self.hint = hint


def user_error(message: str, exit_code: int = EXIT_USAGE, hint: str | None = None) -> UserError:
    return UserError(message, exit_code, hint)


def say_error(message: str, hint: str | None = None) -> None:
    """The one style of every error on standard error: `coursebook: error: MESSAGE`, then
    `  hint: ...` when there is something to suggest."""
    click.echo(f"coursebook: error: {message}", err=True)
    if hint:
        click.echo(f"  hint: {hint}", err=True)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 session`, `2 sessions`, `0 calendar entries` (with `plural_form`)."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


def local_time(value: str | None, zone: dt.tzinfo, *, seconds: bool = False) -> str:
    """A UTC timestamp of a document as people read it: the local time in the clinic zone
    (`2026-12-10 10:00`); the zone is named once, in the column or the title."""
    if not value:
        return "-"
    moment = dt.datetime.fromisoformat(value).astimezone(zone)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds or moment.second
                           else "%Y-%m-%d %H:%M")


def write_export(option: str, path: str, content: str | bytes, what: str, *,
                 force: bool = False, quiet: bool = False) -> None:
    """Writes an export asked for by `option` (e.g. `--csv`) and says so in one line on
    standard error (`wrote 3 audit rows to FILE`), or not at all when `quiet`; a path
    refused (the store's own files, a symbolic link, an existing file without `--force`:
    adapters/entrypoints/export_files.py) or unwritable is a usage error naming the
    option."""
    from coursebook.adapters.entrypoints.export_files import ExportRefused
    from coursebook.adapters.entrypoints.export_files import write_export as write_file

    try:
        write_file(path, content, _current_target(), force=force, option=option)
    except ExportRefused as error:
        raise user_error(error.message) from None
    except OSError as error:
        raise user_error(f"{option}: cannot write {path}: "
                         f"{error.strerror or type(error).__name__}",
                         hint="check that the directory exists and is writable") from None
    if not quiet:
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
    def create(cls, target: str | None, output_format: str, log_file: str | None,
               log_level: str = "info") -> Context:
        import logging

        from coursebook.bootstrap import resolve_target
        from coursebook.logs import configure_logging

        resolved = resolve_target(target)
        stream = None
        if log_file is not None:
            stream = _open_log_file(log_file, resolved)
        configure_logging(stream=stream, level=getattr(logging, log_level.upper()))
        return cls(resolved, output_format, stream)

    @property
    def json(self) -> bool:
        return self.output_format == "json"

    @contextmanager
    def store(self, **kwargs: Any) -> Iterator[Coursebook]:
        """The store, open for this call. A call asks or changes something and exits:
        on PostgreSQL it takes plain connections rather than a pool (`pool=True` for a
        command that runs on, like the view worker)."""
        from coursebook.bootstrap import open_store

        kwargs.setdefault("pool", False)
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


def emit(ctx: Context, document: Any, render: Callable[[Any], None] | None = None) -> None:
    """Prints the JSON document, or its human rendering (see `Output`)."""
    if ctx.json or render is None:
        click.echo(dumps(document))
        return
    render(Output(terminal=stdout_is_terminal()))


class DataTable:
    """A table of text cells, as `table()` builds it: `Output` prints it whole."""

    def __init__(self, title: str | None, columns: Sequence[str],
                 rows: Sequence[Sequence[Any]]) -> None:
        self.title = title
        self.columns = list(columns)
        self.rows = [["" if cell is None else str(cell) for cell in row] for row in rows]

    def __rich__(self) -> Table:
        return self.rich()

    def rich(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        out = Table(title=None if self.title is None else Text(self.title), show_lines=False)
        for column in self.columns:
            # Wrapped, never cut: a narrow terminal gets taller rows, not shorter cells.
            out.add_column(Text(column), overflow="fold")
        for row in self.rows:  # as text, never as rich markup
            out.add_row(*(Text(cell) for cell in row))
        return out

    def tsv(self) -> str:
        lines = [] if self.title is None else [f"# {self.title}"]
        for row in [self.columns, *self.rows]:
            lines.append("\t".join(_tsv_cell(cell) for cell in row))
        return "\n".join(lines)


def _tsv_cell(cell: str) -> str:
    return cell.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n") \
        .replace("\r", "\\r")


class Output:
    """Where the human rendering goes. On a terminal: rich, tables wrapped to its width
    (cells are folded onto more lines, never cut). Not a terminal (a pipe, a file): text
    lines as they are and every table complete, as tab-separated values: a `# title` line,
    a header row, then one line per row (tab, newline, carriage return and backslash in a
    cell written `\\t`, `\\n`, `\\r`, `\\\\`). `--format json` is the document to parse."""

    def __init__(self, *, terminal: bool) -> None:
        self.terminal = terminal
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = (Console(soft_wrap=False) if self.terminal else
                             Console(soft_wrap=True, width=100_000, color_system=None,
                                     force_terminal=False))
        return self._console

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if not objects:
            if self.terminal:
                self.console.print()
            else:
                click.echo("")
        for item in objects:
            if isinstance(item, DataTable):
                if self.terminal:
                    self.console.print(item.rich())
                else:
                    click.echo(item.tsv())
            elif isinstance(item, str) and not self.terminal:
                if kwargs.get("markup", True):
                    from rich.text import Text

                    item = Text.from_markup(item).plain
                click.echo(item)
            else:
                self.console.print(item, **kwargs)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]
          ) -> DataTable:
    return DataTable(title, columns, rows)


def not_found(ctx: Context, error: Rejected) -> None:
    """Queries about something that does not exist: exit 1 with the code."""
    if ctx.json:
        click.echo(dumps({"code": str(error.code), "message": error.message}))
    else:
        say_error(f"{error.code}: {error.message}")
    raise SystemExit(EXIT_REJECTED)


#: What every timestamp option's help says about the forms it takes.
TIMESTAMP_HELP = ("TS: 2026-03-04T10:30:00+01:00 or ...Z; without an offset, a local time in "
                  "the clinic zone (2026-03-04T10:30 or '2026-03-04 10:30'); a date alone "
                  "(2026-03-04) is the start of that local day in the clinic zone.")

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}(Z)?")


def timestamp_option_value(value: str | None, option: str,
                           zone: dt.tzinfo | None = None) -> dt.datetime | None:
    """A timestamp option as people type it (see `TIMESTAMP_HELP`): with an offset as
    given; a date alone, the start of that local day in `zone` (`YYYY-MM-DDZ`: in UTC); a
    local time without an offset, in `zone`, refused when the clocks skip or repeat it
    there. Without `zone` (the store not open yet) only the form is checked, in UTC."""
    if value is None:
        return None
    from coursebook import parse_timestamp

    text = value.strip()
    place = zone or dt.UTC
    date_only = _DATE_ONLY.fullmatch(text)
    if date_only:
        text = text[:10] + ("T00:00:00" if date_only.group(1) is None else "T00:00:00Z")
    try:
        naive = dt.datetime.fromisoformat(text) if len(text) <= 64 else None
    except ValueError:
        naive = None
    if naive is not None and naive.tzinfo is None:
        local = naive.replace(tzinfo=place)
        there = local.astimezone(dt.UTC).astimezone(place)
        if there.replace(tzinfo=None) != naive or \
                naive.replace(fold=1, tzinfo=place).utcoffset() != local.utcoffset():
            raise user_error(f"{option}: {value} does not name one moment in the clinic "
                             f"zone {getattr(place, 'key', place)} (the clocks change then)",
                             hint="give a UTC offset, e.g. 2026-03-29T02:30:00+01:00")
        text = local.isoformat()
    try:
        return parse_timestamp(text, option)
    except Rejected as error:
        raise user_error(error.message, hint="e.g. 2026-03-04, 2026-03-04T10:30 (clinic "
                         "zone) or 2026-03-04T10:30:00+01:00") from None  # names the option


def run(command: click.Command) -> int:
    """Runs the CLI and turns every outcome into an exit code, never a traceback."""
    try:
        command.main(args=hoist_global_options(sys.argv[1:]), standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except UserError as error:
        say_error(error.message, error.hint)
        return error.code
    except click.UsageError as error:
        say_error(_usage_message(error), _usage_hint(error))
        return EXIT_USAGE
    except click.ClickException as error:
        say_error(error.format_message())
        return EXIT_USAGE
    except click.exceptions.Abort:
        return EXIT_USAGE
    except SystemExit as done:
        return int(done.code or 0)
    except StoreUnavailable as error:
        say_error(str(error))
        return EXIT_STORE
    except Tampered as error:  # an answer would rest on a changed record: none is given
        click.echo(f"coursebook: {error}", err=True)
        return EXIT_TAMPERED
    except CoursebookError as error:
        say_error(str(error))
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


#: The global options (`coursebook --db T --format json SUB ...`) and whether they take a
#: value; `hoist_global_options` accepts them after the sub-command too.
GLOBAL_OPTIONS = {"--db": True, "--format": True, "--log-file": True, "--log-level": True}


def hoist_global_options(args: list[str]) -> list[str]:
    """`coursebook course show C-1 --format json` as `coursebook --format json course
    show C-1`: the global options found after the sub-command are moved before it (not
    after `--`, and never a value that another option takes)."""
    start = 0
    while start < len(args) and args[start].startswith("-"):  # the options before SUB
        name = args[start].split("=", 1)[0]
        start += 2 if GLOBAL_OPTIONS.get(name) and "=" not in args[start] else 1
    if start >= len(args):
        return args
    head, rest, tail = list(args[:start]), [], list(args[start:])
    index = 0
    while index < len(tail):
        item = tail[index]
        if item == "--":
            rest.extend(tail[index:])
            break
        name = item.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            takes_value = GLOBAL_OPTIONS[name] and "=" not in item
            if takes_value and index + 1 >= len(tail):
                rest.append(item)  # click says the value is missing
                break
            head.extend(tail[index:index + 1 + takes_value])
            index += 1 + takes_value
            continue
        rest.append(item)
        index += 1
    return head + rest


def _usage_message(error: click.UsageError) -> str:
    return error.format_message()  # click's own text names the option or argument


def _usage_hint(error: click.UsageError) -> str:
    ctx = error.ctx
    path = ctx.command_path if ctx is not None else "coursebook"
    return f"see `{path} --help`"


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
