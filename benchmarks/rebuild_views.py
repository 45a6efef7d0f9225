"""How fast the materialised views rebuild from zero (figures only, no assertions).

    python benchmarks/rebuild_views.py [--courses 10000] [--store PATH] [--repeat 3]
                                       [--profile VIEW]

Generates (or reuses, when `--store` names an existing file) a SQLite store: the same
synthetic clinic as `compliance_asof.py` (about 11 commands a course), applied through
the public commands to an in-memory application with the real rules, and its stored
records then copied into the SQLite file in large batches (the fast part of a synthetic
generator: every record is exactly what `import` would have written, without one
durable transaction per command). 10,000 courses give about 250,000 stored records.

Then, for each view, `read_models.rebuild(app, name)` (empty the view, read the log in
pages, decode, fold, executemany, commit each page with its position) and prints the
events of the view's topics applied per second, and the stored records per second.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import logging
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compliance_asof import START, ZONE, course_commands

from coursebook.adapters.persistence import open_store
from coursebook.application import Coursebook
from coursebook.clock import FixedClock
from coursebook.errors import Rejected
from coursebook.projections import read_models

BATCH = 5000


def generate(path: Path, courses: int) -> None:
    """Commands on an in-memory application, then its records bulk-copied to SQLite."""
    started = time.perf_counter()
    clock = FixedClock(START)
    memory = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    memory.initialise(ZONE)
    rng = random.Random(2026)
    for practitioner, role in (("dr-1", "physician"), ("nurse-1", "nurse")):
        memory.execute({"command": "register_practitioner",
                        "command_id": f"reg-{practitioner}", "at": START.isoformat(),
                        "actor": "admin", "practitioner_id": practitioner,
                        "name": "Synthetic", "role": role,
                        "license_number": f"L-{practitioner}",
                        "license_expires_on": "2030-12-31"})
    refused = 0
    for n in range(courses):
        opened = START + dt.timedelta(hours=7 * n % (24 * 600))
        for command in course_commands(rng, n, opened):
            clock.set(max(dt.datetime.fromisoformat(command["at"]), clock.now()))
            try:
                memory.execute(command)
            except Rejected:
                refused += 1
    applied = time.perf_counter() - started
    store = open_store(str(path), create=True)
    source, target = memory.recorder, store.recorder
    start = 1
    while True:
        page = source.select_notifications(start, BATCH)
        if not page:
            break
        target.insert_events(list(page))  # Notification is a StoredEvent with an id
        start = page[-1].id + 1
    total = store.recorder.max_notification_id()
    store.close()
    memory.close()
    print(f"generated {courses} courses: commands applied in memory in {applied:.1f} s "
          f"({refused} refused), {total} records copied to {path} in "
          f"{time.perf_counter() - started - applied:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, default=10_000)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default=None, metavar="VIEW",
                        help="Profile one rebuild of VIEW and print the top functions.")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    shm = Path("/dev/shm")  # noqa: S108 (a scratch store of synthetic data)
    scratch = shm if shm.is_dir() else Path(tempfile.gettempdir())
    store = args.store or scratch / f"coursebook-bench-views-{args.courses}.db"
    if not store.exists():
        generate(store, args.courses)
    app = open_store(str(store))
    try:
        head = app.recorder.max_notification_id() or 0
        print(f"store {store}: {head} stored records")
        for name in read_models.PROJECTIONS:
            walls, cpus = [], []
            for _ in range(args.repeat):
                started, started_cpu = time.perf_counter(), time.process_time()
                events = read_models.rebuild(app, name)
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - started_cpu)
            wall, cpu = min(walls), min(cpus)
            # On a shared machine the CPU figure is the steadier one (SQLite runs in
            # this process, so it counts the database's work too).
            print(f"rebuild {name:<9} {events:>8} events: wall {wall:6.2f} s = "
                  f"{events / wall:>9,.0f} events/s; cpu {cpu:6.2f} s = "
                  f"{events / cpu:>9,.0f} events/s (best of {args.repeat}; "
                  f"{head / wall:,.0f} stored records/s of the log)", flush=True)
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            read_models.rebuild(app, args.profile)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    finally:
        app.close()


if __name__ == "__main__":
    main()
