"""`coursebook migrate --check | --actor ID [--reason TEXT]`: does this coursebook read the
whole store, and bring its views and snapshots to it (docs/schema-evolution.md).

Exit 0 when every stored record reads and every course folds (and, without `--check`,
the migration was recorded); 1 when some do not (nothing is changed: the problems name
the first places); 2 `--actor` missing; 4 the store cannot be opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    EXIT_OK,
    EXIT_REJECTED,
    Context,
    emit,
    table,
    user_error,
)
from coursebook.errors import Rejected

if TYPE_CHECKING:  # the engine is imported where used: start-up and `--help` need none
    from rich.console import Console


def register(cli: click.Group) -> None:
    cli.add_command(migrate)


@click.command()
@click.option("--check", "check_only", is_flag=True,
              help="Only read the whole store through this coursebook and report; "
                   "change nothing.")
@click.option("--actor", metavar="ID", default=None,
              help="Who runs the migration (recorded; required without --check).")
@click.option("--reason", metavar="TEXT", default=None,
              help="Why it is run (recorded with it).")
@click.pass_obj
def migrate(ctx: Context, check_only: bool, actor: str | None, reason: str | None) -> None:
    """Check that this coursebook reads the whole store; then rebuild the views whose
    format changed, replace the snapshots it cannot use, and record that it ran.

    Stored events are never rewritten: old ones are read through upcasters.
    """
    if not check_only and actor is None:
        raise user_error("migrate: --actor ID is required (or --check to only report)")
    with ctx.store() as app:
        if check_only:
            report = app.check_migration()
            document: dict[str, Any] = report
        else:
            try:
                document = app.migrate(actor=actor or "", reason=reason)
            except Rejected as error:
                raise user_error(error.message) from None
            report = document["check"]

    def render(console: Console) -> None:
        _render_check(console, report)
        if check_only:
            return
        if not document["migrated"]:
            console.print("nothing changed: this coursebook does not read the whole store")
            return
        for view in document["views_rebuilt"]:
            console.print(f"view {view['name']} rebuilt (format {view['from_format']} -> "
                          f"{view['to_format']}, {view['events']} events)", highlight=False)
        console.print(f"snapshots replaced: {document['snapshots_replaced']}",
                      highlight=False)
        recorded = document["recorded"]
        console.print(f"recorded: {recorded['event']} at position {recorded['position']}",
                      highlight=False)

    emit(ctx, document, render)
    raise SystemExit(EXIT_OK if report["ok"] else EXIT_REJECTED)


def _step(upcaster: str) -> str:
    """`upcast_v1_v2` as `v1->v2`."""
    return upcaster.removeprefix("upcast_").replace("_", "->")


def _render_check(console: Console, report: dict[str, Any]) -> None:
    renamed = any(e["old_topics"] for e in report["events"])
    console.print(table(
        "Stored events", ["type", "stored", "now", "read", "failed", "upcasters",
                          *(["old topics"] if renamed else [])],
        [[e["type"], e["stored_version"], e["current_version"], e["records"], e["failed"],
          " ".join(_step(u) for u in e["upcasters"]) or "-",
          *([len(e["old_topics"]) or "-"] if renamed else [])] for e in report["events"]]))
    snapshots = report["snapshots"]
    console.print(f"snapshots: {snapshots['usable']} usable, {snapshots['ignored']} ignored "
                  f"({snapshots['other_form']} of another form, {snapshots['newer']} newer, "
                  f"{snapshots['not_intact']} not intact)", highlight=False)
    console.print(table("Views", ["view", "format", "stored format", "rebuild needed"],
                        [[v["name"], v["format"], v["stored_format"] or "-",
                          "yes" if v["rebuild_needed"] else "no"] for v in report["views"]]))
    console.print(f"courses: {report['courses_folded']} of {report['courses']} folded; "
                  f"records: {report['records']}", highlight=False)
    if report["ok"]:
        console.print("ok: every stored record reads and every course folds")
        return
    console.print(table(f"Problems ({report['problem_count']})",
                        ["position", "subject", "version", "problem"],
                        [[p["position"], p["subject"], p["version"], p["problem"]]
                         for p in report["problems"]]))
