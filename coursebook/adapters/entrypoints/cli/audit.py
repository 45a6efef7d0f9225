"""`coursebook audit`: every recorded fact in recording order."""

from __future__ import annotations

from typing import Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    Context,
    check_export_path,
    emit,
    table,
    write_export,
)


def register(cli: click.Group) -> None:
    cli.add_command(audit)


@click.command()
@click.option("--course", "course_id", metavar="ID", default=None,
              help="Only the events of this course.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the trail as CSV to FILE.")
@click.option("--excel", is_flag=True,
              help="Start the CSV with a UTF-8 byte-order mark, for Excel.")
@click.option("--force", is_flag=True,
              help="Replace FILE if it exists (never the store, its key, or a symlink).")
@click.pass_obj
def audit(ctx: Context, course_id: str | None, csv_file: str | None, excel: bool,
          force: bool) -> None:
    """Who did what, when (valid and recorded time) and why, for every recorded event."""
    from coursebook.adapters.entrypoints.exports import audit_csv

    if csv_file is not None:
        check_export_path("--csv", csv_file, force=force)
    with ctx.store() as app:
        entries = app.audit(course_id)
    if csv_file is not None:
        write_export("--csv", csv_file, audit_csv(entries, excel=excel),
                     f"{len(entries)} audit rows", force=force)

    def render(console: Any) -> None:
        from rich.markup import escape

        rows = [[e["position"], e["at"], e["recorded_at"], e["subject"], e["event"],
                 e["actor"] or "-", escape(e["reason"] or "")] for e in entries]
        title = "Audit trail" + (f" of {course_id}" if course_id else "")
        console.print(table(title, ["#", "at", "recorded", "subject", "event", "actor",
                                    "reason"], rows))

    emit(ctx, entries, render)
