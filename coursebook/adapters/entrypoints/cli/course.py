"""`coursebook course show|history`: a course now, at any moment, and every version."""

from __future__ import annotations

from typing import Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    TIMESTAMP_HELP,
    Context,
    emit,
    local_time,
    not_found,
    table,
    timestamp_option_value,
)
from coursebook.errors import Code, Rejected


def register(cli: click.Group) -> None:
    cli.add_command(course)


@click.group()
def course() -> None:
    """Show one course: its state, or its history."""


def window_text(window: dict[str, Any] | None, zone: Any) -> str:
    """A next-session window in words: `#3: earliest 2026-11-26, target 2026-12-03,
    latest 2026-12-10, planned 2026-12-10 10:00` (local dates and time)."""
    if window is None:
        return "-"
    planned = (f", planned {local_time(window['planned_at'], zone)}"
               if window["planned_at"] else "")
    latest = window["latest"] or "open"
    return (f"#{window['session_no']}: earliest {window['earliest']}, target "
            f"{window['target']}, latest {latest}{planned}")


@course.command()
@click.argument("course_id")
@click.option("--version", "version", type=click.IntRange(min=1, max=2**63 - 1), default=None,
              help="State after the course's first N events.")
@click.option("--as-of", "as_of", metavar="TS", default=None,
              help="Valid time: from the events whose `at` <= TS. " + TIMESTAMP_HELP)
@click.option("--known-at", "known_at", metavar="TS", default=None,
              help="Record time: from the events recorded at or before TS (same forms).")
@click.pass_obj
def show(ctx: Context, course_id: str, version: int | None, as_of: str | None,
         known_at: str | None) -> None:
    """A course's state, now or as of any moment.

    The selections combine: the first N events, of those the ones valid at TS, of those
    the ones recorded by the --known-at moment.
    """
    timestamp_option_value(as_of, "--as-of")  # the form, before opening the store
    timestamp_option_value(known_at, "--known-at")
    with ctx.store() as app:
        zone = app.zone
        as_of_ts = timestamp_option_value(as_of, "--as-of", zone)
        known_at_ts = timestamp_option_value(known_at, "--known-at", zone)
        try:
            document = app.get_course(course_id, version=version, as_of=as_of_ts,
                                      known_at=known_at_ts)
        except Rejected as error:
            if error.code == Code.NOT_FOUND:
                not_found(ctx, error)
            raise

    def render(console: Any) -> None:
        d = document
        rows = [
            ["course", d["course_id"]], ["patient_ref", d["patient_ref"]],
            ["indication", d["indication"]],
            ["protocol", f"{d['protocol']['name']} v{d['protocol']['version']}"],
            ["status", d["status"]], ["version", d["version"]],
            ["sessions", f"{d['sessions_given']} given of {d['planned_sessions']} planned"],
            ["last session", local_time(d["last_session_at"], zone)],
            ["spacing", "min {min_days}, target {target_days}, max {max_days} days"
             .format(**d["spacing"])],
            ["next", window_text(d["next"], zone)],
            ["absolute", ", ".join(d["contraindications"]["absolute"]) or "-"],
            ["relative", ", ".join(d["contraindications"]["relative"]) or "-"],
            ["overridden", ", ".join(d["contraindications"]["overridden"]) or "-"],
            ["blocked by", ", ".join(d["blocked_by"]) or "-"],
        ]
        console.print(table(f"Course {d['course_id']} (times in {zone.key})", ["field", "value"],
                            rows))

    emit(ctx, document, render)


@course.command()
@click.argument("course_id")
@click.pass_obj
def history(ctx: Context, course_id: str) -> None:
    """Every version of a course, with the next-session window before and after each."""
    with ctx.store() as app:
        zone = app.zone
        try:
            documents = app.get_history(course_id)
        except Rejected as error:
            if error.code == Code.NOT_FOUND:
                not_found(ctx, error)
            raise

    def render(console: Any) -> None:
        rows = []
        for d in documents:
            before = window_text(d["next_before"], zone)
            after = window_text(d["next_after"], zone)
            change = after if before == after else f"{before} -> {after}"
            rows.append([d["version"], local_time(d["at"], zone), d["event"], d["actor"],
                         d["summary"], change])
        console.print(table(f"History of {course_id} (times in {zone.key})",
                            ["v", "at", "event", "actor", "summary", "next session"], rows))

    emit(ctx, documents, render)
