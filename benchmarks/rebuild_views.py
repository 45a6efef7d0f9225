"""How fast the materialised views rebuild from zero (figures only, no assertions).

    python -m benchmarks.rebuild_views [--courses 10000] [--store PATH] [--repeat 3]
                                       [--profile VIEW]

Generates (or reuses, when `--store` names an existing file) a SQLite store holding the
synthetic clinic of `benchmarks.clinic` (about 11 commands a course), imported as
`coursebook import` does. 10,000 courses give about 210,000 stored records.

Then, for each view, `read_models.rebuild(app, name)` (empty the view, read the log in
pages, decode, fold, executemany, commit each page with its position) and prints the
events of the view's topics applied per second, and the stored records per second.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import tempfile
import time
from pathlib import Path

import orjson
import structlog

from benchmarks.clinic import END, ZONE, clinic_commands
from coursebook.adapters.cli.importing import apply_lines
from coursebook.adapters.persistence import open_store
from coursebook.clock import FixedClock
from coursebook.projections import read_models


def generate(path: Path, courses: int) -> None:
    """The synthetic clinic of `benchmarks.clinic`, imported as `coursebook import` does."""
    started = time.perf_counter()
    app = open_store(str(path), create=True, clock=FixedClock(END))
    app.initialise(ZONE)
    report = apply_lines(app, b"\n".join(orjson.dumps(c) for c in clinic_commands(courses)))
    total = app.recorder.max_notification_id()
    app.close()
    print(f"generated {courses} courses in {time.perf_counter() - started:.1f} s: "
          f"{report['applied']} applied, {len(report['rejected'])} refused, "
          f"{total} records stored in {path}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, default=10_000)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default=None, metavar="VIEW",
                        help="Profile one rebuild of VIEW (or 'all') and print the top functions.")
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
        for name in [*read_models.PROJECTIONS, None]:
            walls, cpus = [], []
            for _ in range(args.repeat):
                started, started_cpu = time.perf_counter(), time.process_time()
                events = read_models.rebuild(app, name)
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - started_cpu)
            wall, cpu = min(walls), min(cpus)
            # On a shared machine the CPU figure is the steadier one (SQLite runs in
            # this process, so it counts the database's work too).
            print(f"rebuild {name or 'all':<9} {events:>8} events: wall {wall:6.2f} s = "
                  f"{events / wall:>9,.0f} events/s; cpu {cpu:6.2f} s = "
                  f"{events / cpu:>9,.0f} events/s (best of {args.repeat}; "
                  f"{head / wall:,.0f} stored records/s of the log)", flush=True)
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            read_models.rebuild(app, None if args.profile == "all" else args.profile)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    finally:
        app.close()


if __name__ == "__main__":
    main()
