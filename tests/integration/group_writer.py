"""A threaded host sharing one instance, run as its own process so that a test can kill
it with SIGKILL while its groups are being written.

    python -m tests.integration.group_writer TARGET THREADS COURSES ADJUSTMENTS

Thread n opens courses G{n}-{c}, consults them, then adjusts their intervals, one
command at a time, all through the one shared instance (its commands grouped).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from coursebook.bootstrap import open_store
from coursebook.errors import Rejected

__all__ = ["plan"]

AT = "2024-03-06T10:00:00+01:00"
SCREENING = {"pregnant": False, "breastfeeding": False, "active_infection_at_site": False,
             "bleeding_disorder": False, "anticoagulants": False,
             "autoimmune_disease": False, "diabetes": False, "heart_condition": False,
             "allergies": [], "medications": []}
PRACTITIONER = {"command": "register_practitioner", "command_id": "g-reg", "at": AT,
                "actor": "admin", "practitioner_id": "dr-ada", "name": "Ada",
                "role": "physician", "license_number": "L-1",
                "license_expires_on": "2030-01-01"}


def plan(thread: int, courses: int, adjustments: int) -> list[dict[str, Any]]:
    """Thread `thread`'s commands, in the order it sends them."""
    out: list[dict[str, Any]] = []

    def cmd(name: str, actor: str = "dr-ada", /, **fields: Any) -> None:
        out.append({"command": name, "command_id": f"g{thread}-{len(out)}", "at": AT,
                    "actor": actor, **fields})

    for c in range(courses):
        course = f"G{thread}-{c}"
        cmd("open_course", "admin", course_id=course, patient_ref=f"P{thread}-{c}",
            indication="skin_rejuvenation")
        cmd("record_consultation", course_id=course, consent=True, screening=SCREENING)
    for a in range(adjustments):
        for c in range(courses):
            cmd("adjust_interval", course_id=f"G{thread}-{c}", min_days=7,
                target_days=10 + a, max_days=40, reason="group writer adjustment")
    return out


def run(app: Any, threads: int, courses: int, adjustments: int) -> list[str]:
    """Every thread's plan through `app`, at once; the statuses, in no order."""
    statuses: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def main(n: int) -> None:
        barrier.wait(timeout=60)
        for body in plan(n, courses, adjustments):
            try:
                status = app.execute(body).status
            except Rejected as refused:
                status = str(refused.code)
            with lock:
                statuses.append(status)

    workers = [threading.Thread(target=main, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return statuses


if __name__ == "__main__":
    target, threads, courses, adjustments = sys.argv[1], *map(int, sys.argv[2:5])
    extra = {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "1"}
    shared = open_store(target, extra_env=extra)
    run(shared, threads, courses, adjustments)
    shared.close()
