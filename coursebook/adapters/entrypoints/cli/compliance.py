"""`coursebook compliance`: the findings as they stood at a moment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    TIMESTAMP_HELP,
    Context,
    check_export_path,
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
@click.option("--what-if", "what_if", metavar="REF", default=None,
              help="Judge the same recorded facts as though every course had been opened "
                   "under catalogue REF (name@version or a file); records nothing.")
@click.option("--html", "html", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write a self-contained HTML page to FILE instead of the listing, and "
                   "say so in one line.")
@click.option("--force", is_flag=True,
              help="Replace FILE if it exists (never the store, its key, or a symlink).")
@click.option("--quiet", "-q", is_flag=True, help="With --html: print nothing.")
@click.pass_obj
def compliance(ctx: Context, as_of: str | None, known_at: str | None,
               what_if: str | None, html: str | None, force: bool, quiet: bool) -> None:
    """The compliance findings: spacing, overrides, cautions, reactions, overdue courses,
    expiring licences. Times are local, in the clinic zone."""
    timestamp_option_value(as_of, "--as-of")  # the forms, before opening the store
    timestamp_option_value(known_at, "--known-at")
    if html is not None:
        check_export_path("--html", html, force=force)
    with ctx.store() as app:
        zone = app.zone
        as_of_ts = timestamp_option_value(as_of, "--as-of", zone)
        known_at_ts = timestamp_option_value(known_at, "--known-at", zone)
        report = app.compliance_report(as_of_ts, known_at_ts, what_if=what_if)
        # Drawn while the store is open: a report of now folds the courses it draws.
        page = report.html() if html is not None else None
    if html is not None:
        assert page is not None
        count = plural(len(report.findings), "finding")
        write_export("--html", html, page, f"the compliance page ({count})",
                     force=force, quiet=quiet or not ctx.json)
        if not ctx.json:
            if not quiet:
                click.echo(f"wrote the compliance page ({count}, "
                           f"{plural(len(report.courses), 'course')}) to {html}")
            return
    document = report.document()

    def render(console: Console) -> None:
        title = f"Compliance as of {local_time(document['as_of'], zone)}"
        if report.what_if is not None:
            catalogue = report.what_if["catalogue"]
            title = (f"WHAT-IF under {catalogue['name']}@{catalogue['version']} "
                     f"(not the recorded report): {title}")
        if report.known_at is not None:
            title += f", as known at {local_time(report.known_at.isoformat(), zone)}"
        title += f" ({plural(document['courses'], 'course')}; times in {zone.key})"
        console.print(title, markup=False, highlight=False)
        console.print(table(None, ["code", "severity", "count"], report.counts()))
        if not document["findings"]:
            console.print("No findings.")
        else:  # the most severe first (the document keeps its order by time)
            order = {"violation": 0, "warning": 1, "info": 2}
            rows = sorted(document["findings"], key=lambda f: order.get(f["severity"], 3))
            console.print(table("Findings (most severe first, then by time)",
                                ["at", "severity", "code", "course", "session", "detail"],
                                [[local_time(f["at"], zone), f["severity"], f["code"],
                                  f["course_id"] or "-",
                                  "-" if f["session_no"] is None else f["session_no"],
                                  summarise_detail(f["detail"])] for f in rows]))
        if report.what_if is not None:
            for label in ("added", "removed"):
                changed = report.what_if[label]
                console.print(f"{label} by the what-if: {len(changed)}", markup=False)
                for f in changed:
                    session = "" if f["session_no"] is None else f" #{f['session_no']}"
                    console.print(f"  {f['code']:<27}  {f['course_id'] or '-'}{session}",
                                  markup=False, highlight=False)
            if report.what_if["not_covered"]:
                console.print("judged as recorded (indication not covered): "
                              + ", ".join(report.what_if["not_covered"]), markup=False)

    emit(ctx, document, render)
