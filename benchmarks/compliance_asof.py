"""How long `compliance --as-of` takes over a large store (figures only, no assertions).

    python benchmarks/compliance_asof.py [--courses 10000] [--store PATH] [--repeat 3]

Builds (or reuses, when `--store` names an existing file) a SQLite store of `--courses`
courses of about 11 events each, written through the application like an import (so the
log also holds receipts and patient records), then times:

- the whole report as the command line computes it (read the log, decode, fold, judge),
- the same split into its parts: reading and decoding the events, and folding + judging,
- the `coursebook compliance --as-of` command itself (a fresh process, as a user runs it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import logging
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

from coursebook.adapters.persistence import open_store
from coursebook.clock import FixedClock
from coursebook.errors import Rejected
from coursebook.projections.compliance import (
    build_report,
    compliance_report,
    read_report_events,
)

ZONE = "Europe/Paris"
START = dt.datetime(2024, 1, 8, 8, 0, tzinfo=dt.UTC)
AS_OF = dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.UTC)
SCREENING = {"pregnant": False, "breastfeeding": False, "active_infection_at_site": False,
             "bleeding_disorder": False, "anticoagulants": False, "autoimmune_disease": False,
             "diabetes": False, "heart_condition": False, "allergies": [], "medications": []}
PRODUCT = {"name": "Profhilo", "lot": "PH-1", "expires_on": "2030-12-31"}


def course_commands(rng: random.Random, n: int, opened: dt.datetime) -> list[dict[str, Any]]:
    """About 11 commands for one skin course: open, consult, sessions, reactions, close."""
    course_id, ids = f"C-{n:06d}", iter(range(100))

    def cmd(name: str, at: dt.datetime, actor: str = "dr-1", **fields: Any) -> dict[str, Any]:
        return {"command": name, "command_id": f"{course_id}-{next(ids)}",
                "at": at.isoformat(), "actor": actor, **fields}

    out = [cmd("open_course", opened, "desk", course_id=course_id, patient_ref=f"P-{n:06d}",
               indication="skin_rejuvenation", planned_sessions=6,
               patient={"name": "Synthetic Patient", "birth_date": "1980-01-01"}),
           cmd("record_consultation", opened + dt.timedelta(minutes=30), course_id=course_id,
               consent=True, screening={**SCREENING, "diabetes": rng.random() < 0.2})]
    day = opened + dt.timedelta(hours=2)
    for session_no in range(1, 7):
        extra: dict[str, Any] = {}
        if session_no > 1:
            gap = rng.choice([10, 14, 18, 21, 25, 28, 33])
            day += dt.timedelta(days=gap)
            if gap < 14:
                extra["spacing_override_reason"] = "Patient travels for work"
        out.append(cmd("give_session", day, "nurse-1", course_id=course_id,
                       products=[PRODUCT], areas=["face"], dose_ml=2.0, anaesthetic=None,
                       **extra))
        if rng.random() < 0.15:
            severity = rng.choice([1, 2, 3, 4])
            out.append(cmd("report_reaction", day + dt.timedelta(hours=20), "nurse-1",
                           course_id=course_id, session_no=session_no, kind="swelling",
                           severity=severity))
            if severity >= 3:
                reviewed = day + dt.timedelta(hours=20 + rng.choice([5, 80]))
                out.append(cmd("review_reaction", reviewed,
                               course_id=course_id, session_no=session_no,
                               decision="continue"))
    if rng.random() < 0.7:
        out.append(cmd("complete_course", day + dt.timedelta(hours=1), course_id=course_id))
    return out


def build_store(path: Path, courses: int) -> None:
    clock = FixedClock(START)
    app = open_store(str(path), create=True, clock=clock)
    app.initialise(ZONE)
    rng = random.Random(2026)
    for practitioner, role in (("dr-1", "physician"), ("nurse-1", "nurse")):
        app.execute({"command": "register_practitioner", "command_id": f"reg-{practitioner}",
                     "at": START.isoformat(), "actor": "admin",
                     "practitioner_id": practitioner, "name": "Synthetic", "role": role,
                     "license_number": f"L-{practitioner}", "license_expires_on": "2030-12-31"})
    started, rejected = time.perf_counter(), Counter[str]()
    for n in range(courses):
        opened = START + dt.timedelta(hours=7 * n % (24 * 600))
        for command in course_commands(rng, n, opened):
            clock.set(max(dt.datetime.fromisoformat(command["at"]), clock.now()))
            try:
                app.execute(command)
            except Rejected as refusal:
                rejected[f"{command['command']} {refusal.code}"] += 1
        if n and n % 1000 == 0:
            print(f"  ... {n} courses ({time.perf_counter() - started:.0f} s)", flush=True)
    clock.set(AS_OF)
    app.close()
    print(f"built {courses} courses in {time.perf_counter() - started:.1f} s "
          f"(refused: {dict(rejected) or 'none'})")


def timed(label: str, repeat: int, work: Any, *, cpu: bool = True) -> Any:
    """Wall time (best and median of `repeat`) and, in this process, CPU time: on a shared
    machine the CPU figure is the steadier one."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - started_cpu)
    line = (f"{label:<48} wall best {min(walls):6.2f} s, median "
            f"{sorted(walls)[len(walls) // 2]:6.2f} s")
    if cpu:
        line += f"; cpu best {min(cpus):6.2f} s"
    print(line, flush=True)
    return result


def without_gc(work: Any) -> Any:
    gc.disable()
    try:
        return work()
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, default=10_000)
    parser.add_argument("--store", type=Path, default=None,
                        help="SQLite file to build, or reuse if it exists")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    # tmpfs when there is one: building 100,000+ commands is then not bound by fsync.
    shm = Path("/dev/shm")  # noqa: S108 (a scratch store of synthetic data)
    scratch = shm if shm.is_dir() else Path(tempfile.gettempdir())
    store = args.store or scratch / f"coursebook-bench-compliance-{args.courses}.db"
    if not store.exists():
        build_store(store, args.courses)
    app = open_store(str(store))
    try:
        total = app.recorder.max_notification_id() or 0
        events = list(read_report_events(app))
        print(f"store {store}: {total} stored records, {len(events)} read by the report, "
              f"{sum(type(e).__name__ == 'Opened' for e in events)} courses")
        report = timed("compliance_report(as_of) [read+decode+fold+judge]", args.repeat,
                       lambda: compliance_report(app, as_of=AS_OF))
        timed("  read + decode the events (GC paused, as in the report)", args.repeat,
              lambda: without_gc(lambda: list(read_report_events(app))))
        timed("  fold + judge (events in memory, GC paused)", args.repeat,
              lambda: without_gc(lambda: build_report(events, as_of=AS_OF, known_at=None,
                                                      zone=app.zone)))
        timed("  ... and the JSON document", args.repeat, lambda: report.document())
        timed("  with --known-at as well", args.repeat,
              lambda: compliance_report(app, as_of=AS_OF, known_at=AS_OF))
        print(f"findings: {len(report.findings)}; by code: "
              + ", ".join(f"{code} {n}" for code, _, n in report.counts()))
    finally:
        app.close()
    command = [str(Path(sys.executable).with_name("coursebook")), "--db", str(store),
               "--format", "json", "compliance", "--as-of", AS_OF.isoformat()]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    timed("`coursebook compliance --as-of` (JSON, new process)", args.repeat,
          lambda: subprocess.run(  # noqa: S603 (our own console script)
              command, check=True, capture_output=True,
              env={**os.environ, "PYTHONWARNINGS": "ignore"}), cpu=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    print(f"{'  its CPU time, mean of the runs':<48} {child_cpu / args.repeat:6.2f} s")


if __name__ == "__main__":
    main()
