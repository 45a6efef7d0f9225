"""`coursebook import FILE`: apply JSON Lines commands in order, each atomically.

A line that is not UTF-8, not JSON or not an object is rejected `INVALID` and the file
goes on; nothing but a missing or unreadable file stops it (exit 2). The work is
`Coursebook.import_lines`; this module reads the file and prints the report.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    EXIT_OK,
    EXIT_REJECTED,
    Context,
    emit,
    plural,
    table,
    user_error,
)


@contextmanager
def _progress_bar(data: IO[bytes]) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar of the lines read, on a terminal (standard error) only; the
    log has one line per batch (and one per rejected line)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = _lines_in(data)
    with Progress(TextColumn("importing: lines"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task("import", total=total)

        def update(line: int) -> None:
            bar.update(task, completed=line)

        yield update
        if total is not None:
            bar.update(task, completed=total)


def _lines_in(data: IO[bytes]) -> int | None:
    """The lines of a regular file (counted in chunks, then rewound); None for a pipe or
    a device, whose length is unknown (the bar then only counts)."""
    try:
        if not stat.S_ISREG(os.fstat(data.fileno()).st_mode) or not data.seekable():
            return None
        count, last = 0, b"\n"
        for chunk in iter(lambda: data.read(1 << 20), b""):
            count += chunk.count(b"\n")
            last = chunk[-1:]
        data.seek(0)
    except (OSError, ValueError):
        return None
    return count + (0 if last == b"\n" else 1)


def register(cli: click.Group) -> None:
    cli.add_command(import_commands)


@click.command("import")
@click.argument("file", metavar="FILE")
@click.option("--stop-on-error", is_flag=True, help="Stop at the first rejected line.")
@click.pass_obj
def import_commands(ctx: Context, file: str, stop_on_error: bool) -> None:
    """Apply JSON Lines commands from FILE (- for standard input), each atomically."""
    try:  # read line by line: memory stays bounded whatever the file holds
        data = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as error:
        raise user_error(f"cannot read {file}: {error.strerror or type(error).__name__}") \
            from None
    try:
        with ctx.store() as app, _progress_bar(data) as progress:
            report = app.import_lines(data, stop_on_error=stop_on_error,
                                      progress=progress).as_dict()
    finally:
        if data is not sys.stdin.buffer:
            data.close()

    def render(console: Any) -> None:
        console.print(f"applied {report['applied']}, duplicates {report['duplicates']}, "
                      f"rejected {len(report['rejected'])} "
                      f"({plural(len(report['rejected']), 'line')} listed below)"
                      if report["rejected"] else
                      f"applied {report['applied']}, duplicates {report['duplicates']}, "
                      "rejected 0")
        if report["rejected"]:
            console.print(table("Rejected lines", ["line", "command_id", "code", "message"],
                                [[r["line"], r["command_id"], r["code"], r["message"]]
                                 for r in report["rejected"]]))

    emit(ctx, report, render)
    raise SystemExit(EXIT_REJECTED if report["rejected"] else EXIT_OK)
