"""`coursebook projections status|rebuild|run`: the materialised views and their workers."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from coursebook.adapters.entrypoints.cli.common import Context, emit, table, user_error

if TYPE_CHECKING:  # the engine is imported where used: start-up and `--help` need none
    from rich.console import Console


def register(cli: click.Group) -> None:
    cli.add_command(projections)


@click.group()
def projections() -> None:
    """The materialised views (calendar, audit, recall, compliance): status, rebuild, and a
    worker."""


@projections.command()
@click.pass_obj
def status(ctx: Context) -> None:
    """The position of each view against the log's last event of the kinds it follows."""
    with ctx.store() as app:
        documents = app.views_status()

    def render(console: Console) -> None:
        console.print(table("Views (positions in the log; the log's last event is the last "
                            "of the kinds the view follows)",
                            ["view", "position", "log's last event", "events pending",
                             "up to date", "log head (any record)"],
                            [[d["name"], d["position"], d["last_event"], d["pending"],
                              "yes" if d["up_to_date"] else "no", d["head"]]
                             for d in documents]))

    emit(ctx, documents, render)


class _Reach:
    """The last `(position, head)` a rebuild reported: how far in the log it read."""

    def __init__(self) -> None:
        self.position = 0

    def __call__(self, position: int, head: int) -> None:
        self.position = max(self.position, position)


@contextmanager
def _progress_bar(name: str, reach: _Reach) -> Iterator[Any]:
    """A rich progress bar on a terminal (standard error) of the log positions read (what
    the table reports as `log read`); otherwise only `reach` is kept."""
    if not sys.stderr.isatty():
        yield reach
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn(f"rebuilding {name}: log read"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                  transient=False) as bar:
        task = bar.add_task(name, total=None)

        def update(position: int, head: int) -> None:
            reach(position, head)
            bar.update(task, completed=position, total=head)

        yield update


@projections.command()
@click.argument("name", required=False)
@click.pass_obj
def rebuild(ctx: Context, name: str | None) -> None:
    """Rebuild every view (or the one NAMEd) from zero."""
    results = []
    with ctx.store() as app:
        views = app.view_names()
        if name is not None and name not in views:
            raise user_error(f"NAME: no view named {name!r}",
                             hint=f"the views are {', '.join(views)}")
        names = [name] if name is not None else list(views)
        for view in names:
            started = time.perf_counter()
            reach = _Reach()
            with _progress_bar(view, reach) as progress:
                events = app.rebuild_views(view, progress=progress)
            seconds = time.perf_counter() - started
            results.append({"name": view, "events": events, "log_read": reach.position,
                            "seconds": round(seconds, 3),
                            "events_per_second": round(events / seconds) if seconds else None})

    def render(console: Console) -> None:
        console.print(table("Rebuilt (events applied to the view; log positions read)",
                            ["view", "events", "log read", "seconds", "events/s"],
                            [[r["name"], r["events"], r["log_read"], r["seconds"],
                              r["events_per_second"]] for r in results]))

    emit(ctx, {"rebuilt": results}, render)


@projections.command()
@click.option("--poll", "poll", type=click.FloatRange(min=0.05), default=0.5,
              show_default=True, help="Seconds between looks for new events (SQLite).")
@click.pass_obj
def run(ctx: Context, poll: float) -> None:
    """A worker that keeps the views up to date until SIGINT or SIGTERM.

    It resumes from each view's committed position; on PostgreSQL it wakes on the
    library's LISTEN/NOTIFY subscription, on SQLite it polls. Any number of workers
    may run: a page commits only if its view still stands where the page began.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ctx.store(pool=True) as app:  # runs on: the pool keeps its connections
            result = app.follow_views(stop, poll=poll)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    document = {"stopped": True, **result}
    emit(ctx, document, lambda console: console.print(
        f"worker stopped: {result['processed']} events applied ({result['mode']}); "
        "positions " + ", ".join(f"{n} {p}" for n, p in result["positions"].items()),
        highlight=False))
