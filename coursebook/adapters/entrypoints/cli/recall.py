"""`coursebook recall`: every session given with a lot, for a field safety notice."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from coursebook.adapters.entrypoints.cli.common import (
    Context,
    emit,
    table,
    timestamp_option_value,
    write_export,
)

if TYPE_CHECKING:
    from rich.console import Console


def register(cli: click.Group) -> None:
    cli.add_command(recall)


@click.command()
@click.argument("lot")
@click.option("--as-of", "as_of", metavar="TS", default=None,
              help="Valid time: the sessions given, and each course's status, at TS "
                   "(default: now).")
@click.option("--known-at", "known_at", metavar="TS", default=None,
              help="Record time: only from the events recorded at or before TS (what "
                   "the clinic knew then).")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the sessions as CSV to FILE.")
@click.option("--force", is_flag=True, default=False,
              help="Replace FILE if it exists (never the store or its key).")
@click.pass_obj
def recall(ctx: Context, lot: str, as_of: str | None, known_at: str | None,
           csv_file: str | None, force: bool) -> None:
    """Every session given with a product of lot LOT (compared without surrounding
    spaces): course, session, when, by whom, the patient by pseudonym, the course's
    status and whether the patient was erased. An unknown lot lists nothing (exit 0)."""
    from coursebook.adapters.entrypoints.exports import recall_csv

    as_of_ts = timestamp_option_value(as_of, "--as-of")
    known_at_ts = timestamp_option_value(known_at, "--known-at")
    with ctx.store() as app:
        document = app.recall(lot, as_of_ts, known_at_ts)
    sessions = document["sessions"]
    if csv_file is not None:
        write_export("--csv", csv_file, recall_csv(sessions), f"{len(sessions)} sessions",
                     force=force)

    def render(console: Console) -> None:
        from rich.markup import escape

        title = f"Recall of lot {document['lot']} as of {document['as_of']}"
        if known_at_ts is not None:
            title += f", as known at {known_at_ts.isoformat()}"
        console.print(title, markup=False, highlight=False)
        console.print(f"{len(sessions)} sessions, {document['courses']} courses, "
                      f"{document['patients']} patients", markup=False, highlight=False)
        rows = [[s["at"], escape(s["course_id"]), s["session_no"], escape(s["actor"] or "-"),
                 escape(s["patient_ref"]), "yes" if s["patient_erased"] else "",
                 s["course_status"] or "-", escape(str(s["product"]["name"]))]
                for s in sessions]
        console.print(table(None, ["at", "course", "#", "actor", "patient", "erased",
                                   "status", "product"], rows))
        if not sessions:
            console.print("No session was given with this lot.")

    emit(ctx, document, render)
