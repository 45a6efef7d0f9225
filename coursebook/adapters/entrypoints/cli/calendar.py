"""`coursebook calendar`: the next session of every course to book."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    Context,
    check_export_path,
    emit,
    table,
    user_error,
    write_export,
)


def register(cli: click.Group) -> None:
    cli.add_command(calendar)


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise user_error(f"{option}: expected a date YYYY-MM-DD, got {value!r}") from None


@click.command()
@click.option("--from", "start", metavar="DATE", default=None,
              help="First local date (inclusive; open when omitted).")
@click.option("--to", "end", metavar="DATE", default=None,
              help="Last local date (inclusive; open when omitted).")
@click.option("--ics", "ics", type=click.Path(dir_okay=False), default=None,
              help="Also write the entries as an iCalendar file (RFC 5545).")
@click.option("--force", is_flag=True,
              help="Replace FILE if it exists (never the store, its key, or a symlink).")
@click.pass_obj
def calendar(ctx: Context, start: str | None, end: str | None, ics: str | None,
             force: bool) -> None:
    """The next session of every active or maintenance course, by local date.

    Planned sessions count on their planned local date, unplanned ones on their target
    date; courses whose patient was erased are left out.
    """
    from coursebook.adapters.entrypoints.exports import calendar_ics

    first, last = _date(start, "--from"), _date(end, "--to")
    if ics is not None:
        check_export_path("--ics", ics, force=force)
    with ctx.store() as app:
        entries = app.calendar(first, last)
        zone = app.zone
        now = app.clock.now()
    if ics is not None:
        write_export("--ics", ics, calendar_ics(entries, zone, stamp=now),
                     f"{len(entries)} calendar entries", force=force)

    def render(console: Any) -> None:
        rows = []
        for e in entries:
            when = e["planned_at"] or f"(unplanned; target {e['target']})"
            rows.append([when, e["course_id"], e["patient_ref"], e["session_no"],
                         f"{e['earliest']} .. {e['latest'] or 'open'}",
                         e["practitioner_id"] or "-", ", ".join(e["cautions"]) or "-",
                         ", ".join(e["blocked_by"]) or "-"])
        console.print(table(f"Calendar ({len(entries)} sessions to book)",
                            ["when", "course", "patient", "session", "window",
                             "practitioner", "cautions", "blocked by"], rows))

    emit(ctx, entries, render)
