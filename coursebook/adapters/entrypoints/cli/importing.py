"""`coursebook import FILE`: apply JSON Lines commands in order, each atomically.

A line that is not UTF-8, not JSON or not an object is rejected `INVALID` and the file
goes on; nothing but a missing or unreadable file stops it (exit 2). The work is
`Coursebook.import_lines`; this module reads the file and prints the report.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
def _progress_bar(data: bytes) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar of the lines read, on a terminal (standard error) only; the
    log has one line per batch (and one per rejected line)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    with Progress(TextColumn("importing: lines"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task("import", total=total)

        def update(line: int) -> None:
            bar.update(task, completed=line)

        yield update
        bar.update(task, completed=total)


def register(cli: click.Group) -> None:
    cli.add_command(import_commands)


@click.command("import")
@click.argument("file", metavar="FILE")
@click.option("--stop-on-error", is_flag=True, help="Stop at the first rejected line.")
@click.pass_obj
def import_commands(ctx: Context, file: str, stop_on_error: bool) -> None:
    """Apply JSON Lines commands from FILE (- for standard input), each atomically."""
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as error:
        raise user_error(f"cannot read {file}: {error.strerror or type(error).__name__}") \
            from None
    with ctx.store() as app, _progress_bar(data) as progress:
        report = app.import_lines(data, stop_on_error=stop_on_error,
                                  progress=progress).as_dict()

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
