"""Code that runs in the writer processes of the integration tests (started with the
`spawn` method, so it must be importable and take only picklable arguments)."""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from coursebook.bootstrap import open_store
from coursebook.errors import Code, Rejected, StoreUnavailable
from coursebook.logs import FIELDS, ROOT

__all__ = ["MAX_ATTEMPTS", "run_plan", "writer_process"]

MAX_ATTEMPTS = 8
"""How often a writer sends a command refused with CONFLICT (or an unavailable store)."""


def run_plan(app: Any, plan: list[dict[str, Any]], barrier: Any,
             seed: int) -> list[dict[str, Any]]:
    """Sends each command, retrying CONFLICT and StoreUnavailable with the same body (its
    command_id makes that safe); after some applied ones, sends them again as a client
    whose reply was lost would. Returns one record per send."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    barrier.wait(timeout=120)
    for body in plan:
        conflicts = unavailable = 0
        status, code = "unsent", None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                status, code = app.execute(body).status, None
            except Rejected as refused:
                status, code = "rejected", str(refused.code)
                if refused.code == Code.CONFLICT and attempt < MAX_ATTEMPTS:
                    conflicts += 1
                    time.sleep(rng.uniform(0, 0.01))
                    continue
            except StoreUnavailable:
                status, code = "unavailable", None
                if attempt < MAX_ATTEMPTS:
                    unavailable += 1
                    time.sleep(rng.uniform(0, 0.05))
                    continue
            except Exception as error:  # recorded: the test fails on any of these
                status, code = "error", f"{type(error).__name__}: {error}"
            break
        records.append({"command_id": body["command_id"], "subject": body.get("course_id"),
                        "status": status, "code": code, "conflicts": conflicts,
                        "unavailable": unavailable, "resend": False})
        if status == "applied" and rng.random() < 0.25:
            try:
                again = app.execute(body).status
            except Exception as error:
                again = f"error: {type(error).__name__}"
            records.append({"command_id": body["command_id"], "subject": body.get("course_id"),
                            "status": again, "code": None, "conflicts": 0,
                            "unavailable": 0, "resend": True})
    return records


def writer_process(target: str, extra_env: dict[str, str], plans: list[list[dict[str, Any]]],
                   barrier: Any, results: Any, seed: int) -> None:
    """One process: one application shared by a thread per plan. Groups the engine
    recorded one by one after another writer's conflict are counted as conflicts too."""
    app = open_store(target, extra_env=extra_env)
    out: list[dict[str, Any]] = []
    redone = _GroupsRedone()
    engine_log = logging.getLogger(ROOT)
    engine_log.addHandler(redone)
    engine_log.setLevel(logging.INFO)
    lock = threading.Lock()

    def thread_main(number: int, plan: list[dict[str, Any]]) -> None:
        records = run_plan(app, plan, barrier, seed * 100 + number)
        with lock:
            out.extend(records)

    threads = [threading.Thread(target=thread_main, args=(n, plan))
               for n, plan in enumerate(plans)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    app.close()
    engine_log.removeHandler(redone)
    results.put({"records": out, "groups_redone": redone.count})


class _GroupsRedone(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, FIELDS, {})
        if fields.get("event") == "group_redone":
            self.count += 1
