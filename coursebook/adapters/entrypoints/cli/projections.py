"""`coursebook projections status|rebuild|run`: the materialised views and their workers."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from coursebook.adapters.entrypoints.cli.common import Context, emit, not_found, table
from coursebook.errors import Code, Rejected

if TYPE_CHECKING:  # the engine is imported where used: start-up and `--help` need none
    from rich.console import Console

    from coursebook.adapters.storage.view_recorders import ViewRunner
    from coursebook.service.application import Coursebook


def _log() -> Any:
    from coursebook.logs import get_logger

    return get_logger("coursebook.projections")

POLL_SECONDS = 0.5
"""How often a worker without a subscription (SQLite) looks for new events."""


def register(cli: click.Group) -> None:
    cli.add_command(projections)


@click.group()
def projections() -> None:
    """The materialised views (calendar, audit): status, rebuild, and a worker."""


@projections.command()
@click.pass_obj
def status(ctx: Context) -> None:
    """The position of each view against the head of the log."""
    from coursebook.service import read_models

    with ctx.store() as app:
        documents = [s.as_dict() for s in read_models.status(app)]

    def render(console: Console) -> None:
        console.print(table("Views", ["view", "position", "log head", "pending", "up to date"],
                            [[d["name"], d["position"], d["head"], d["pending"],
                              "yes" if d["up_to_date"] else "no"] for d in documents]))

    emit(ctx, documents, render)


@contextmanager
def _progress_bar(name: str) -> Iterator[Any]:
    """A rich progress bar on a terminal (standard error); nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn(f"rebuilding {name}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True),
                  transient=False) as bar:
        task = bar.add_task(name, total=None)

        def update(position: int, head: int) -> None:
            bar.update(task, completed=position, total=head)

        yield update


@projections.command()
@click.argument("name", required=False)
@click.pass_obj
def rebuild(ctx: Context, name: str | None) -> None:
    """Rebuild every view (or the one NAMEd) from zero."""
    from coursebook.service import read_models

    results = []
    with ctx.store() as app:
        views = read_models.runners(app)
        if name is not None and name not in views:
            not_found(ctx, Rejected(Code.NOT_FOUND, f"no view named {name!r} (views: "
                                    f"{', '.join(views)})", "name"))
        names = [name] if name is not None else list(views)
        for view in names:
            started = time.perf_counter()
            with _progress_bar(view) as progress:
                events = read_models.rebuild(app, view, progress=progress)
            seconds = time.perf_counter() - started
            results.append({"name": view, "events": events, "seconds": round(seconds, 3),
                            "events_per_second": round(events / seconds) if seconds else None})

    def render(console: Console) -> None:
        console.print(table("Rebuilt", ["view", "events", "seconds", "events/s"],
                            [[r["name"], r["events"], r["seconds"], r["events_per_second"]]
                             for r in results]))

    emit(ctx, {"rebuilt": results}, render)


def _catch_up_all(views: dict[str, ViewRunner], stop: threading.Event) -> int:
    return sum(runner.catch_up(stop=stop) for runner in views.values())


def _follow_subscription(app: Coursebook, views: dict[str, ViewRunner],
                         stop: threading.Event, counts: dict[str, int],
                         holder: dict[str, Any]) -> None:
    """Wakes on the library's subscription (PostgreSQL LISTEN/NOTIFY) and catches up."""
    try:
        start = min(runner.view.position() for runner in views.values())
        with app.recorder.subscribe(gt=start) as subscription:
            holder["subscription"] = subscription
            if stop.is_set():
                return
            counts["processed"] += _catch_up_all(views, stop)
            caught = app.recorder.max_notification_id() or 0
            for notification in subscription:
                if stop.is_set():
                    break
                if notification.id <= caught:
                    continue
                counts["processed"] += _catch_up_all(views, stop)
                caught = max(caught, notification.id,
                             min(runner.view.position() for runner in views.values()))
    except BaseException as error:  # handed to the main thread, which reports it
        holder["error"] = error
        stop.set()


@projections.command()
@click.option("--poll", "poll", type=click.FloatRange(min=0.05), default=POLL_SECONDS,
              show_default=True, help="Seconds between looks for new events (SQLite).")
@click.pass_obj
def run(ctx: Context, poll: float) -> None:
    """A worker that keeps the views up to date until SIGINT or SIGTERM.

    It resumes from each view's committed position; on PostgreSQL it wakes on the
    library's LISTEN/NOTIFY subscription, on SQLite it polls. Any number of workers
    may run: a page commits only if its view still stands where the page began.
    """
    from coursebook.service import read_models

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        _log().info("worker_stopping", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    counts = {"processed": 0}
    mode = "poll"
    try:
        with ctx.store() as app:
            views = read_models.runners(app)
            _log().info("worker_started", views=list(views),
                     positions={n: r.view.position() for n, r in views.items()})
            holder: dict[str, Any] = {}
            if _has_subscription(app):
                mode = "subscription"
                thread = threading.Thread(target=_follow_subscription,
                                          args=(app, views, stop, counts, holder),
                                          daemon=True)
                thread.start()
                while not stop.wait(0.2):
                    pass
                subscription = holder.get("subscription")
                if subscription is not None:
                    subscription.stop()
                thread.join(timeout=10)
                if "error" in holder:
                    raise holder["error"]
            else:
                while not stop.is_set():
                    done = _catch_up_all(views, stop)
                    counts["processed"] += done
                    if not done:
                        stop.wait(poll)
            positions = {n: r.view.position() for n, r in views.items()}
            conflicts = sum(r.conflicts for r in views.values())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _log().info("worker_stopped", processed=counts["processed"], conflicts=conflicts)
    document = {"stopped": True, "mode": mode, "processed": counts["processed"],
                "conflicts": conflicts, "positions": positions}
    emit(ctx, document, lambda console: console.print(
        f"worker stopped: {counts['processed']} events applied ({mode}); positions "
        + ", ".join(f"{n} {p}" for n, p in positions.items()), highlight=False))


def _has_subscription(app: Coursebook) -> bool:
    """Whether the store offers the library's subscription (SQLite's raises)."""
    recorder: Any = app.recorder
    if type(recorder).__module__.startswith("eventsourcing.sqlite"):
        return False
    with suppress(NotImplementedError, AttributeError):
        return callable(recorder.subscribe) and \
            type(recorder).__module__.startswith("eventsourcing.postgres")
    return False
