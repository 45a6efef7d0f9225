"""`coursebook calendar`: the next session of every course to book."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    Context,
    check_export_path,
    emit,
    local_time,
    plural,
    table,
    user_error,
    write_export,
)

#: The table and the iCalendar file without --from/--to/--all start this many days ago.
DEFAULT_PAST_DAYS = 30


def register(cli: click.Group) -> None:
    cli.add_command(calendar)


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise user_error(f"{option}: expected a date YYYY-MM-DD, got {value!r}",
                         hint="e.g. --from 2026-06-01 --to 2026-06-30") from None


@click.command()
@click.option("--from", "start", metavar="DATE", default=None,
              help=f"First local date (inclusive). Default: {DEFAULT_PAST_DAYS} days before "
                   "today for the table and --ics; open with --format json.")
@click.option("--to", "end", metavar="DATE", default=None,
              help="Last local date (inclusive; open when omitted).")
@click.option("--all", "everything", is_flag=True,
              help="No default range: every course to book, however old its window.")
@click.option("--ics", "ics", type=click.Path(dir_okay=False), default=None,
              help="Write the entries as an iCalendar file (RFC 5545) instead of the "
                   "table, and say so in one line.")
@click.option("--force", is_flag=True,
              help="Replace FILE if it exists (never the store, its key, or a symlink).")
@click.option("--quiet", "-q", is_flag=True, help="With --ics: print nothing.")
@click.pass_obj
def calendar(ctx: Context, start: str | None, end: str | None, everything: bool,
             ics: str | None, force: bool, quiet: bool) -> None:
    """The next session of every active or maintenance course, by local date.

    Planned sessions count on their planned local date, unplanned ones on their target
    date; courses whose patient was erased are left out. Within a day: planned sessions
    by time, then the unplanned ones. Times are local, in the clinic zone.
    """
    from coursebook.adapters.entrypoints.exports import calendar_ics, course_revisions

    first, last = _date(start, "--from"), _date(end, "--to")
    if first is not None and last is not None and first > last:
        raise user_error(f"--from: {first} is after --to {last}",
                         hint="give the earlier date to --from")
    if ics is not None:
        check_export_path("--ics", ics, force=force)
    with ctx.store() as app:
        zone = app.zone
        now = app.clock.now()
        # The JSON document keeps open bounds when none is given (what scripts rely on).
        defaulted = first is None and last is None and not everything and not ctx.json
        if defaulted:
            first = now.astimezone(zone).date() - dt.timedelta(days=DEFAULT_PAST_DAYS)
        entries = app.calendar(first, last)
        if ics is not None:
            wanted = {e["course_id"] for e in entries}
            revisions = course_revisions(row for row in app.audit()
                                         if row["subject"] in wanted)
            content = calendar_ics(entries, zone, stamp=now, store=app.store_identity,
                                   revisions=revisions)
    span = (f"{first} .. {last}" if first and last else f"from {first}" if first else
            f"to {last}" if last else "all dates") + \
        (f" (default: the last {DEFAULT_PAST_DAYS} days on; --all for every date)"
         if defaulted else "")
    if ics is not None:
        write_export("--ics", ics, content,
                     f"{plural(len(entries), 'calendar entry', 'calendar entries')}, "
                     f"{span}", force=force, quiet=quiet or not ctx.json)
        if not ctx.json:
            if not quiet:
                click.echo(f"wrote {plural(len(entries), 'calendar entry', 'calendar entries')}"
                           f" ({span}) to {ics}")
            return

    def render(console: Any) -> None:
        rows = []
        for e in entries:
            when = local_time(e["planned_at"], zone) if e["planned_at"] else \
                f"{e['target']} (unplanned)"
            rows.append([when, e["course_id"], e["patient_ref"], e["session_no"],
                         f"earliest {e['earliest']}, target {e['target']}, "
                         f"latest {e['latest'] or 'open'}",
                         e["practitioner_id"] or "-", ", ".join(e["cautions"]) or "-",
                         ", ".join(e["blocked_by"]) or "-"])
        console.print(table(f"Calendar {span}: {plural(len(entries), 'session')} to book "
                            f"(times in {zone.key})",
                            ["when", "course", "patient", "session", "window",
                             "practitioner", "cautions", "blocked by"], rows))

    emit(ctx, entries, render)
