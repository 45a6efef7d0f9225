"""Figure (d''): `compliance` as of now, read from the compliance view, against the same
report computed from the stored events (`--as-of` the same moment) in the same run.

    python -m benchmarks.compliance_now [--courses 10000] [--repeat 3] [--store PATH]

In the suite (`python -m benchmarks`) the figure is measured over a clinic of 10,000
courses at full size (a store of its own, imported as `coursebook import` does) and over
the suite's clinic otherwise (`--quick`, or `--courses N`). The store's clock stands at
the end of the clinic's history, so "now" and the baseline's `--as-of` are one moment;
the two documents are checked equal before any figure is reported.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

FULL_COURSES = 10_000
"""The courses of the issue's target (compliance now over 10,000 courses <= 0.5 s)."""


def build(target: str, courses: int) -> None:
    """The synthetic clinic of `courses` courses, imported in one go at the store's clock."""
    import orjson

    from benchmarks.clinic import END, ZONE, clinic_commands
    from coursebook.bootstrap import open_store
    from coursebook.clock import FixedClock

    app = open_store(target, create=True, clock=FixedClock(END))
    try:
        app.initialise(ZONE)
        app.import_lines(b"\n".join(orjson.dumps(c) for c in clinic_commands(courses)))
    finally:
        app.close()


def measure(target: str, repeat: int) -> dict[str, Any]:
    """Times `compliance_report()` (now: the view) and `compliance_report(as_of=now)` (the
    events), wall and CPU, best of `repeat`; also the JSON document of the view's report."""
    from benchmarks.clinic import END
    from coursebook.bootstrap import open_store
    from coursebook.clock import FixedClock

    app = open_store(target, clock=FixedClock(END))
    try:
        app.catch_up_views()  # an import left them current; a fresh store's first call

        def timed(work: Any) -> tuple[float, float, Any]:
            walls, cpus, result = [], [], None
            for _ in range(repeat):
                cpu, started = time.process_time(), time.perf_counter()
                result = work()
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu)
            return min(walls), min(cpus), result

        now, now_cpu, report = timed(app.compliance_report)
        document, _, _ = timed(report.document)
        events, events_cpu, baseline = timed(lambda: app.compliance_report(as_of=END))
        if report.document() != baseline.document():
            raise AssertionError("the view's report differs from the events' report")
        return {"seconds": now, "cpu": now_cpu, "document": document,
                "baseline": events, "baseline_cpu": events_cpu,
                "courses": len(report.courses), "findings": len(report.findings)}
    finally:
        app.close()


def figures(stores: Any, clinic: str, clinic_courses: int, *, own_store: bool,
            repeat: int) -> list[Any]:
    """The suite's figure: over `FULL_COURSES` courses in a store of its own when
    `own_store` (full size), else over the suite's clinic (`clinic_courses` courses)."""
    from benchmarks.suite import Figure

    target = clinic
    if own_store and clinic_courses < FULL_COURSES:
        target = stores.new("compliance_now")
        build(target, FULL_COURSES)
    m = measure(target, repeat)
    return [Figure(
        "compliance_now", f"compliance (as of now) over {m['courses']} courses",
        m["seconds"], "s", m["baseline"], "the same report from the events (--as-of now)",
        higher_is_better=False, target="value <= 0.5",
        note=f"from the compliance view; {m['findings']} findings, CPU {m['cpu']:.2f} s "
             f"(baseline {m['baseline_cpu']:.2f} s); its JSON document "
             f"{m['document']:.2f} s more")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, default=FULL_COURSES)
    parser.add_argument("--store", type=Path, default=None,
                        help="SQLite file to build, or reuse if it exists")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("coursebook").setLevel(logging.WARNING)
    shm = Path("/dev/shm")  # noqa: S108 (a scratch store of synthetic data)
    scratch = shm if shm.is_dir() else Path(tempfile.gettempdir())
    store = args.store or scratch / f"coursebook-bench-now-{args.courses}.db"
    if not store.exists():
        started = time.perf_counter()
        build(str(store), args.courses)
        print(f"built {args.courses} courses in {time.perf_counter() - started:.1f} s")
    m = measure(str(store), args.repeat)
    print(f"compliance now (view):        wall {m['seconds']:.3f} s, cpu {m['cpu']:.3f} s "
          f"({m['courses']} courses, {m['findings']} findings)")
    print(f"  its JSON document:          wall {m['document']:.3f} s")
    print(f"compliance --as-of (events):  wall {m['baseline']:.3f} s, "
          f"cpu {m['baseline_cpu']:.3f} s")


if __name__ == "__main__":
    main()
