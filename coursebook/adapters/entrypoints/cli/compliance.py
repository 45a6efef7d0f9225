"""`coursebook compliance`: the findings as they stood at a moment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    TIMESTAMP_HELP,
    Context,
    emit,
    local_time,
    plural,
    table,
    timestamp_option_value,
    write_export,
)

if TYPE_CHECKING:
    from rich.console import Console


def register(cli: click.Group) -> None:
    cli.add_command(compliance)


def summarise_detail(detail: dict[str, Any]) -> str:
    """One line of `key=value` facts (the detail holds no personal data)."""
    parts = []
    for key, value in detail.items():
        if value is None:
            continue
        if isinstance(value, dict):
            value = " v".join(str(v) for v in value.values())
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        parts.append(f"{key}={value}")
    return "; ".join(parts)


@click.command()
@click.option("--as-of", "as_of", metavar="TS", default=None,
              help="Valid time: the findings as they stood at TS (default: now). "
                   + TIMESTAMP_HELP)
@click.option("--known-at", "known_at", metavar="TS", default=None,
              help="Record time: only from the events recorded at or before TS (same forms).")
@click.option("--html", "html", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write a self-contained HTML page to FILE instead of the listing, and "
                   "say so in one line.")
@click.option("--quiet", "-q", is_flag=True, help="With --html: print nothing.")
@click.pass_obj
def compliance(ctx: Context, as_of: str | None, known_at: str | None,
               html: str | None, quiet: bool) -> None:
    """The compliance findings: spacing, overrides, cautions, reactions, overdue courses,
    expiring licences. Times are local, in the clinic zone."""
    timestamp_option_value(as_of, "--as-of")  # the forms, before opening the store
    timestamp_option_value(known_at, "--known-at")
    with ctx.store() as app:
        zone = app.zone
        as_of_ts = timestamp_option_value(as_of, "--as-of", zone)
        known_at_ts = timestamp_option_value(known_at, "--known-at", zone)
        report = app.compliance_report(as_of_ts, known_at_ts)
    if html is not None:
        count = plural(len(report.findings), "finding")
        write_export("--html", html, report.html(), f"the compliance page ({count})",
                     quiet=quiet or not ctx.json)
        if not ctx.json:
            if not quiet:
                click.echo(f"wrote the compliance page ({count}, "
                           f"{plural(len(report.courses), 'course')}) to {html}")
            return
    document = report.document()

    def render(console: Console) -> None:
        title = f"Compliance as of {local_time(document['as_of'], zone)}"
        if report.known_at is not None:
            title += f", as known at {local_time(report.known_at.isoformat(), zone)}"
        title += f" ({plural(document['courses'], 'course')}; times in {zone.key})"
        console.print(title, markup=False, highlight=False)
        console.print(table(None, ["code", "severity", "count"], report.counts()))
        if not document["findings"]:
            console.print("No findings.")
            return
        # The most severe first (the document keeps its order by time).
        order = {"violation": 0, "warning": 1, "info": 2}
        rows = sorted(document["findings"], key=lambda f: order.get(f["severity"], 3))
        console.print(table("Findings (most severe first, then by time)",
                            ["at", "severity", "code", "course", "session", "detail"],
                            [[local_time(f["at"], zone), f["severity"], f["code"],
                              f["course_id"] or "-",
                              "-" if f["session_no"] is None else f["session_no"],
                              summarise_detail(f["detail"])] for f in rows]))

    emit(ctx, document, render)
