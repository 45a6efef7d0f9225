"""`coursebook compliance`: the findings as they stood at a moment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    Context,
    check_export_path,
    emit,
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
              help="Valid time: the findings as they stood at TS (default: now).")
@click.option("--known-at", "known_at", metavar="TS", default=None,
              help="Record time: only from the events recorded at or before TS.")
@click.option("--what-if", "what_if", metavar="REF", default=None,
              help="Judge the same recorded facts as though every course had been opened "
                   "under catalogue REF (name@version or a file); records nothing.")
@click.option("--html", "html", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write a self-contained HTML report to FILE.")
@click.option("--force", is_flag=True,
              help="Replace FILE if it exists (never the store, its key, or a symlink).")
@click.pass_obj
def compliance(ctx: Context, as_of: str | None, known_at: str | None,
               what_if: str | None, html: str | None, force: bool) -> None:
    """The compliance findings: spacing, overrides, cautions, reactions, overdue courses,
    expiring licences."""
    as_of_ts = timestamp_option_value(as_of, "--as-of")
    known_at_ts = timestamp_option_value(known_at, "--known-at")
    if html is not None:
        check_export_path("--html", html, force=force)
    with ctx.store() as app:
        report = app.compliance_report(as_of_ts, known_at_ts, what_if=what_if)
    document = report.document()
    if html is not None:
        write_export("--html", html, report.html(), "the compliance page", force=force)

    def render(console: Console) -> None:
        from rich.padding import Padding
        from rich.text import Text

        title = f"Compliance as of {document['as_of']}"
        if report.what_if is not None:
            catalogue = report.what_if["catalogue"]
            title = (f"WHAT-IF under {catalogue['name']}@{catalogue['version']} "
                     f"(not the recorded report): {title}")
        if report.known_at is not None:
            title += f", as known at {report.known_at.isoformat()}"
        title += f" ({document['courses']} courses)"
        console.print(title, markup=False, highlight=False)
        console.print(table(None, ["code", "severity", "count"], report.counts()))
        if not document["findings"]:
            console.print("No findings.")
        for f in document["findings"]:
            session = "" if f["session_no"] is None else f" #{f['session_no']}"
            console.print(f"{f['at']}  {f['severity']:<9}  {f['code']:<27}  "
                          f"{f['course_id'] or '-'}{session}", markup=False, highlight=False)
            console.print(Padding(Text(summarise_detail(f["detail"])), (0, 0, 0, 4)))
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
