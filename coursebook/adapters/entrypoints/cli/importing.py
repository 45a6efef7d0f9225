"""`coursebook import FILE`: apply JSON Lines commands in order, each atomically.

A line that is not UTF-8, not JSON or not an object is rejected `INVALID` and the file
goes on; nothing but a missing or unreadable file stops it (exit 2). The work is
`Coursebook.import_lines`; this module reads the file and prints the report.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    EXIT_OK,
    EXIT_REJECTED,
    Context,
    emit,
    table,
    user_error,
)


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
        with ctx.store() as app:
            report = app.import_lines(data, stop_on_error=stop_on_error).as_dict()
    finally:
        if data is not sys.stdin.buffer:
            data.close()

    def render(console: Any) -> None:
        console.print(f"applied {report['applied']}, duplicates {report['duplicates']}, "
                      f"rejected {len(report['rejected'])}")
        if report["rejected"]:
            console.print(table("Rejected lines", ["line", "command_id", "code", "message"],
                                [[r["line"], r["command_id"], r["code"], r["message"]]
                                 for r in report["rejected"]]))

    emit(ctx, report, render)
    raise SystemExit(EXIT_REJECTED if report["rejected"] else EXIT_OK)
