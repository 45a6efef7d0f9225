"""A worker that keeps the views current while writers run with `views="worker"`: it
resumes from each view's committed position; on PostgreSQL it wakes on the library's
LISTEN/NOTIFY subscription, elsewhere it polls. Any number may run: a page commits only
if its view still stands where the page began."""

from __future__ import annotations

import threading
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from coursebook.logs import get_logger
from coursebook.service.wiring import Wiring

if TYPE_CHECKING:
    from coursebook.adapters.storage.view_recorders import ViewRunner

__all__ = ["POLL_SECONDS", "follow_views"]

log = get_logger("coursebook.projections")

POLL_SECONDS = 0.5
"""How often a worker without a subscription (SQLite) looks for new events."""


def follow_views(app: Wiring, stop: threading.Event, *,
                 poll: float = POLL_SECONDS) -> dict[str, Any]:
    """Applies new events to the views until `stop` is set; returns `{"mode",
    "processed", "conflicts", "positions"}`."""
    from coursebook.service import read_models

    views = read_models.runners(app)
    log.info("worker_started", views=list(views),
             positions={n: r.view.position() for n, r in views.items()})
    counts = {"processed": 0}
    mode = "poll"
    holder: dict[str, Any] = {}
    if _has_subscription(app):
        mode = "subscription"
        thread = threading.Thread(target=_follow_subscription,
                                  args=(app, views, stop, counts, holder), daemon=True)
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
    log.info("worker_stopped", processed=counts["processed"], conflicts=conflicts)
    return {"mode": mode, "processed": counts["processed"], "conflicts": conflicts,
            "positions": positions}


def _catch_up_all(views: dict[str, ViewRunner], stop: threading.Event) -> int:
    return sum(runner.catch_up(stop=stop) for runner in views.values())


def _follow_subscription(app: Wiring, views: dict[str, ViewRunner],
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


def _has_subscription(app: Wiring) -> bool:
    """Whether the store offers the library's subscription (SQLite's raises)."""
    recorder: Any = app.recorder
    if type(recorder).__module__.startswith("eventsourcing.sqlite"):
        return False
    with suppress(NotImplementedError, AttributeError):
        return callable(recorder.subscribe) and \
            type(recorder).__module__.startswith("eventsourcing.postgres")
    return False
