"""Where the time of `compliance --as-of` goes over a large store (figures only).

    python -m benchmarks.compliance_asof [--courses 10000] [--store PATH] [--repeat 3]

The suite (`python -m benchmarks`) reports the report's time as figure (d); this breaks it
down. It builds (or reuses, when `--store` names an existing file) a SQLite store holding
the synthetic clinic of `benchmarks.clinic` (`--courses` courses, about 13 commands
each, imported as `coursebook import` does), then times:

- the whole report as the command line computes it (read the log, decode, fold, judge),
- the same split into its parts: reading and decoding the events (and that again layer by
  layer: the library's recorder, orjson alone, the transcoder, the mapper), and folding +
  judging (and the fold and the judgement alone),
- the `coursebook compliance --as-of` command itself (a fresh process, as a user runs it).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.clinic import END, ZONE, clinic_commands
from coursebook.adapters.storage.integrity import TaggingMapper
from coursebook.adapters.storage.report_reads import PAGE_SIZE, report_mapper
from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock
from coursebook.domain.course_state import CourseState
from coursebook.projections.compliance import build_report, judge, report_topics

AS_OF = END


def build_store(path: Path, courses: int) -> None:
    app = open_store(str(path), create=True, clock=FixedClock(END))
    app.initialise(ZONE)
    started = time.perf_counter()
    lines = b"\n".join(orjson.dumps(c) for c in clinic_commands(courses))
    report = app.import_lines(lines).as_dict()
    app.close()
    print(f"built {courses} courses in {time.perf_counter() - started:.1f} s "
          f"(applied {report['applied']}, duplicates {report['duplicates']}, "
          f"refused {len(report['rejected'])})")


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


def breakdown(app: Any, repeat: int) -> None:
    """Reading and decoding, layer by layer (each line includes the ones above it)."""
    topics = report_topics()

    def pages() -> list[Any]:
        notifications, start = [], 1
        while True:
            page = app.recorder.select_notifications(start, PAGE_SIZE, topics=topics)
            notifications.extend(page)
            if len(page) < PAGE_SIZE:
                return notifications
            start = page[-1].id + 1

    notifications = pages()
    bodies = [TaggingMapper.untagged(n.state) for n in notifications]
    mapper = report_mapper(app.mapper)
    timed("    the library's recorder: rows to Notifications", repeat,
          lambda: without_gc(pages))
    timed("    orjson.loads of the bodies alone", repeat,
          lambda: without_gc(lambda: [orjson.loads(b) for b in bodies]))
    timed("    the transcoder: orjson + typed values revived", repeat,
          lambda: without_gc(lambda: [mapper.transcoder.decode(b) for b in bodies]))
    timed("    the mapper: transcoder + topic, event object", repeat,
          lambda: without_gc(lambda: [mapper.to_domain_event(n) for n in notifications]))


def courses_of(events: list[Any]) -> list[list[Any]]:
    streams: dict[Any, list[Any]] = {}
    for event in events:
        if type(event).__qualname__.startswith("TreatmentCourse."):
            streams.setdefault(event.originator_id, []).append(event)
    return list(streams.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, default=10_000)
    parser.add_argument("--store", type=Path, default=None,
                        help="SQLite file to build, or reuse if it exists")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("coursebook").setLevel(logging.WARNING)  # no per-command records

    # tmpfs when there is one: building 100,000+ commands is then not bound by fsync.
    shm = Path("/dev/shm")  # noqa: S108 (a scratch store of synthetic data)
    scratch = shm if shm.is_dir() else Path(tempfile.gettempdir())
    store = args.store or scratch / f"coursebook-bench-compliance-{args.courses}.db"
    if not store.exists():
        build_store(store, args.courses)
    app = open_store(str(store))
    try:
        total = app.recorder.max_notification_id() or 0
        events = list(app.report_events())
        print(f"store {store}: {total} stored records, {len(events)} read by the report, "
              f"{sum(type(e).__name__ == 'Opened' for e in events)} courses")
        report = timed("compliance_report(as_of) [read+decode+fold+judge]", args.repeat,
                       lambda: app.compliance_report(as_of=AS_OF))
        timed("  read + decode the events (GC paused, as in the report)", args.repeat,
              lambda: without_gc(lambda: list(app.report_events())))
        breakdown(app, args.repeat)
        timed("  fold + judge (events in memory, GC paused)", args.repeat,
              lambda: without_gc(lambda: build_report(events, as_of=AS_OF, known_at=None,
                                                      zone=app.zone)))
        streams = courses_of(events)
        timed("    of which CourseState.fold alone", args.repeat,
              lambda: without_gc(lambda: [CourseState.fold(s) for s in streams]))
        timed("    of which judge alone", args.repeat,
              lambda: without_gc(lambda: judge(report.courses.values(),
                                               report.practitioners.values(), as_of=AS_OF,
                                               zone=app.zone)))
        timed("  ... and the JSON document", args.repeat, lambda: report.document())
        timed("  with --known-at as well", args.repeat,
              lambda: app.compliance_report(as_of=AS_OF, known_at=AS_OF))
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
