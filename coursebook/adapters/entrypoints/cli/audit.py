"""`coursebook audit`: every recorded fact in recording order."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    Context,
    check_export_path,
    emit,
    local_time,
    not_found,
    plural,
    table,
    timestamp_option_value,
    user_error,
    write_export,
)
from coursebook.errors import Code, Rejected


def register(cli: click.Group) -> None:
    cli.add_command(audit)


@click.command()
@click.option("--course", "course_id", metavar="ID", default=None,
              help="Only the events of this course (NOT_FOUND, exit 1, if there is none).")
@click.option("--since", "since", metavar="TS", default=None,
              help="Only the events recorded at or after TS (a date alone: the start of "
                   "that local day in the clinic zone; or a local time, or with an offset).")
@click.option("--until", "until", metavar="TS", default=None,
              help="Only the events recorded before TS (same forms).")
@click.option("--limit", "limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="At most the first N of those, in recording order.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), default=None,
              help="Write the trail as CSV to FILE instead of the table, and say so in "
                   "one line.")
@click.option("--excel", is_flag=True,
              help="Start the CSV with a UTF-8 byte-order mark, for Excel.")
@click.option("--force", is_flag=True,
              help="Replace FILE if it exists (never the store, its key, or a symlink).")
@click.option("--quiet", "-q", is_flag=True, help="With --csv: print nothing.")
@click.pass_obj
def audit(ctx: Context, course_id: str | None, since: str | None, until: str | None,
          limit: int | None, csv_file: str | None, excel: bool, force: bool,
          quiet: bool) -> None:
    """Who did what, when (valid and recorded time) and why, for every recorded event."""
    from coursebook.adapters.entrypoints.exports import audit_csv

    timestamp_option_value(since, "--since")  # the forms, before opening the store
    timestamp_option_value(until, "--until")
    if csv_file is not None:
        check_export_path("--csv", csv_file, force=force)
    with ctx.store() as app:
        zone = app.zone
        start = timestamp_option_value(since, "--since", zone)
        end = timestamp_option_value(until, "--until", zone)
        if start is not None and end is not None and start >= end:
            raise user_error(f"--since: {since} is not before --until {until}",
                             hint="give the earlier moment to --since")
        entries = app.audit(course_id)
        if course_id is not None and not entries:
            try:
                app.get_course(course_id)
            except Rejected as error:
                if error.code == Code.NOT_FOUND:
                    not_found(ctx, error)
                raise
    entries = _select(entries, start, end, limit)
    if csv_file is not None:
        what = plural(len(entries), "audit row")
        write_export("--csv", csv_file, audit_csv(entries, excel=excel), what,
                     force=force, quiet=quiet or not ctx.json)
        if not ctx.json:
            if not quiet:
                click.echo(f"wrote {what} to {csv_file}")
            return

    def render(console: Any) -> None:
        rows = [[e["position"], local_time(e["at"], zone, seconds=True),
                 local_time(e["recorded_at"], zone, seconds=True), e["subject"], e["event"],
                 e["actor"] or "-", e["reason"] or ""] for e in entries]
        title = "Audit trail" + (f" of {course_id}" if course_id else "") + \
            f": {plural(len(entries), 'event')} (times in {zone.key})"
        console.print(table(title, ["#", "at", "recorded", "subject", "event", "actor",
                                    "reason"], rows))

    emit(ctx, entries, render)


def _select(entries: list[dict[str, Any]], start: dt.datetime | None,
            end: dt.datetime | None, limit: int | None) -> list[dict[str, Any]]:
    if start is not None or end is not None:
        def inside(entry: dict[str, Any]) -> bool:
            recorded = dt.datetime.fromisoformat(entry["recorded_at"])
            return (start is None or recorded >= start) and (end is None or recorded < end)
        entries = [e for e in entries if inside(e)]
    return entries if limit is None else entries[:limit]
