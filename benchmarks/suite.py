"""The benchmark run: build the synthetic clinic, measure coursebook and its baselines side
by side, print a table, and optionally write the figures as JSON.

    python -m benchmarks [--quick] [--store sqlite|postgres] [--json FILE] [sizes...]

Every figure carries its baseline measured in the same run, the ratio (how many times
better coursebook does: throughput over throughput, or time over time inverted, so a
ratio above 1 always means coursebook is ahead), the target from issue 6 and whether it
was met. Stores live in a temporary directory on disk (SQLite, default `synchronous`,
WAL) or in throwaway PostgreSQL databases, and are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

__all__ = ["Figure", "Sizes", "main", "run"]

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"


@attrs.define
class Sizes:
    courses: int = 6_700
    """Courses in the clinic imported for (b), then read by (c) and (d): about 110,000
    course events (the size of the compliance target), 113,000 commands."""
    commands: int = 3_000
    """Commands sent one by one through each design for (a)."""
    long_course: int = 1_000
    """Events of the one course that (e) asks about."""
    repeat: int = 5
    """Repetitions of the short timed operations (the median is reported)."""
    catch_up: int = 20_000
    """Events the per-event catch-up baseline processes (its rate is per event)."""
    now_full: bool = True
    """Compliance as of now over 10,000 courses, in a store of its own (else over the
    clinic of (b); so with `--quick` or `--courses`)."""

    @classmethod
    def quick(cls) -> Sizes:
        return cls(courses=400, commands=600, long_course=1_000, repeat=3, catch_up=1_000,
                   now_full=False)


@attrs.define
class Figure:
    name: str
    label: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    higher_is_better: bool = True
    target: str | None = None
    """`value >= X`, `value <= X` or `ratio >= X`; None for figures reported only."""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.baseline is None or not self.value or not self.baseline:
            return None
        return self.value / self.baseline if self.higher_is_better else self.baseline / self.value

    @property
    def met(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        subject, op, threshold = self.target.split()
        got = self.ratio if subject == "ratio" else self.value
        if got is None:
            return None
        return got >= float(threshold) if op == ">=" else got <= float(threshold)

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "baseline": self.baseline,
                "ratio": None if self.ratio is None else round(self.ratio, 3),
                "target": self.target, "met": self.met, "label": self.label,
                "baseline_label": self.baseline_label, "note": self.note}


# -- stores ---------------------------------------------------------------------------------
class Stores:
    """Fresh stores by label: SQLite files in a temporary directory, or throwaway
    PostgreSQL databases (dropped at the end)."""

    def __init__(self, kind: str, directory: Path | None = None) -> None:
        self.kind = kind
        self.dir = Path(tempfile.mkdtemp(prefix="coursebook-bench-", dir=directory))
        self.databases: list[str] = []
        self.tag = uuid.uuid4().hex[:8]

    def new(self, label: str) -> str:
        if self.kind == "sqlite":
            return str(self.dir / f"{label}.db")
        import psycopg

        name = f"cbbench_{self.tag}_{label}"
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return f"{POSTGRES_SERVER}/{name}"

    def path(self, name: str) -> Path:
        return self.dir / name

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.databases:
            import psycopg

            from coursebook.adapters.storage.keys import key_file_for

            with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as conn:
                for name in self.databases:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    key_file_for(f"{POSTGRES_SERVER}/{name}").unlink(missing_ok=True)


# -- helpers --------------------------------------------------------------------------------
def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _median_ms(work: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


class Clock:
    """Moves the application clock to each command's `at` (never backwards), so facts are
    recorded when they happened and are never in the future."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def follow(self, command: dict[str, Any]) -> None:
        at = dt.datetime.fromisoformat(command["at"])
        if at > self.clock.now():
            self.clock.set(at)


def _log_stream(stores: Stores) -> Any:
    """Coursebook is measured with its logging on: one JSON line per command, to a file
    (as with `--log-file`)."""
    from coursebook.logs import configure_logging

    stream = open(stores.path("coursebook.log"), "a", encoding="utf-8")  # noqa: SIM115
    configure_logging(stream=stream, json=True)
    return stream


def _open(target: str, *, create: bool = False, clock: Any = None) -> Any:
    from coursebook.bootstrap import open_store

    return open_store(target, create=create, clock=clock)


# -- (a) commands one by one ----------------------------------------------------------------
def _drive(execute: Callable[[dict[str, Any]], Any], commands: list[dict[str, Any]],
           follow: Callable[[dict[str, Any]], None] | None,
           advance: Callable[[int], None]) -> dict[str, float]:
    from coursebook.errors import Rejected

    latencies: list[float] = []
    cpu_started, started = time.process_time(), time.perf_counter()
    for i, command in enumerate(commands):
        if follow is not None:
            follow(command)
        begun = time.perf_counter()
        with contextlib.suppress(Rejected):
            execute(command)
        latencies.append(time.perf_counter() - begun)
        if i % 100 == 99:
            advance(100)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    advance(len(commands) % 100)
    return {"per_s": len(commands) / wall, "p50_ms": _percentile(latencies, 0.5) * 1000,
            "p99_ms": _percentile(latencies, 0.99) * 1000,
            "cpu_ms": cpu / len(commands) * 1000}


def measure_commands(stores: Stores, commands: list[dict[str, Any]],
                     advance: Callable[[int], None]) -> dict[str, dict[str, float]]:
    from benchmarks.clinic import ZONE
    from benchmarks.reference import CrudAudit, PlainCourses
    from coursebook.adapters.storage.persistence import store_env
    from coursebook.clock import FixedClock

    results = {}
    clock = FixedClock(dt.datetime.fromisoformat(commands[0]["at"]))
    app = _open(stores.new("commands"), create=True, clock=clock)
    app.initialise(ZONE)
    results["coursebook"] = _drive(app.execute, commands, Clock(clock).follow, advance)
    app.close()

    plain = PlainCourses(store_env(stores.new("plain"), create=True))
    results["eventsourcing"] = _drive(plain.execute, commands, None, advance)
    plain.close()

    target = stores.new("crud")
    crud = (CrudAudit.sqlite_file(target) if stores.kind == "sqlite"
            else CrudAudit.postgres(target))
    results["crud"] = _drive(crud.execute, commands, None, advance)
    crud.close()
    return results


# -- (b) bulk import ------------------------------------------------------------------------
def measure_import(target: str, lines: bytes, n_lines: int) -> dict[str, float]:
    from benchmarks.clinic import END, ZONE
    from coursebook.clock import FixedClock

    # The import is dated by the clock of a clinic backend that sends its history late:
    # every fact lies in the past, all recorded "now".
    app = _open(target, create=True, clock=FixedClock(END))
    app.initialise(ZONE)
    cpu_started, started = time.process_time(), time.perf_counter()
    report = app.import_lines(lines).as_dict()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    events = app.recorder.max_notification_id() or 0
    app.close()
    return {"per_s": n_lines / wall, "seconds": wall, "cpu_ms": cpu / n_lines * 1000,
            "applied": report["applied"], "duplicates": report["duplicates"],
            "rejected": len(report["rejected"]), "stored": events}


# -- (c) rebuild ----------------------------------------------------------------------------
def rebuild_function() -> Callable[..., int] | None:
    try:
        from coursebook.service.read_models import rebuild  # type: ignore[import-not-found]
    except ImportError:
        return None
    return rebuild  # type: ignore[no-any-return]


def measure_rebuild(target: str, stores: Stores, catch_up: int,
                    advance: Callable[[int], None]) -> dict[str, float | None]:
    from benchmarks.reference import catch_up_per_event, read_and_decode

    out: dict[str, float | None] = {}
    gc.collect()
    started, count = time.perf_counter(), 0
    for n in read_and_decode(target):
        count += n
    out["raw_per_s"] = count / (time.perf_counter() - started)
    out["events"] = count

    app = _open(target)
    if stores.kind == "sqlite":
        view_env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "CREATE_TABLE": "y",
                    "SQLITE_DBNAME": str(stores.path("catchup-view.db"))}
    else:
        from coursebook.adapters.storage.persistence import store_env

        view_env = {**store_env(stores.new("catchupview"), create=True)}
    started = time.perf_counter()
    caught = catch_up_per_event(app, view_env, limit=catch_up, progress=advance)
    out["catchup_per_s"] = caught / (time.perf_counter() - started)

    rebuild = rebuild_function()
    out["rebuild_per_s"] = None
    if rebuild is not None:
        started = time.perf_counter()
        rebuilt = rebuild(app, name=None, progress=None)
        elapsed = time.perf_counter() - started
        out["rebuild_per_s"] = (rebuilt or count) / elapsed
    app.close()
    return out


# -- (d) compliance as of -------------------------------------------------------------------
def measure_compliance(target: str, repeat: int) -> dict[str, float]:
    from benchmarks.clinic import END


    app = _open(target)
    try:
        times, cpus, report = [], [], None
        for _ in range(repeat):
            cpu, started = time.process_time(), time.perf_counter()
            report = app.compliance_report(as_of=END)
            times.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
        started = time.perf_counter()
        events = sum(1 for _ in app.report_events())
        read = time.perf_counter() - started
        assert report is not None
        # judged under the shipped catalogue the store is not under
        other = "default@1" if app.catalogue()["version"] == 2 else "default@2"
        what_ifs, imagined = [], None
        for _ in range(repeat):
            started = time.perf_counter()
            imagined = app.compliance_report(as_of=END, what_if=other)
            what_ifs.append(time.perf_counter() - started)
        assert imagined is not None
        assert imagined.what_if is not None
        return {"seconds": min(times), "cpu": min(cpus), "courses": len(report.courses),
                "findings": len(report.findings), "events": events, "read_decode": read,
                "what_if": min(what_ifs), "added": len(imagined.what_if["added"]),
                "removed": len(imagined.what_if["removed"]), "other": other}
    finally:
        app.close()


# -- (d') recall of a lot ------------------------------------------------------------------
def measure_recall(target: str, repeat: int) -> dict[str, Any]:
    """`recall` of the lot given most often, against a raw scan of every stored session
    (read, decoded, lots compared): the same rows a recall without its view would read."""
    from eventsourcing.utils import get_topic

    from benchmarks.clinic import END
    from benchmarks.reference import scan_lots
    from coursebook.domain.course import TreatmentCourse

    topic = get_topic(TreatmentCourse.SessionGiven)
    scans = []
    counts: dict[str, int] = {}
    for _ in range(repeat):
        started = time.perf_counter()
        counts = scan_lots(target, topic)
        scans.append(time.perf_counter() - started)
    lot = max(sorted(counts), key=lambda k: counts[k])
    app = _open(target)
    try:
        app.recall(lot, as_of=END)  # the view caught up once
        times, document = [], None
        for _ in range(repeat):
            started = time.perf_counter()
            document = app.recall(lot, as_of=END)
            times.append(time.perf_counter() - started)
        assert document is not None
        return {"seconds": min(times), "scan": min(scans), "lot": lot,
                "sessions": len(document["sessions"]), "courses": document["courses"],
                "scanned": sum(counts.values())}
    finally:
        app.close()


# -- (e) a long course ----------------------------------------------------------------------
def build_long_course(target: str, events: int) -> dict[str, Any]:
    from benchmarks.clinic import ZONE, long_course, staff_commands
    from coursebook.clock import FixedClock
    from coursebook.errors import Rejected

    commands = long_course(events)
    clock = FixedClock(dt.datetime.fromisoformat(commands[0]["at"]))
    app = _open(target, create=True, clock=clock)
    app.initialise(ZONE)
    follow = Clock(clock).follow
    for command in [*staff_commands(), *commands]:
        follow(command)
        with contextlib.suppress(Rejected):
            app.execute(command)
    stored = app.course_events("LONG-1")
    app.close()
    middle = stored[len(stored) // 2]
    return {"events": len(stored), "as_of": middle.at, "known_at": middle.timestamp,
            "version": len(stored) // 2}


def measure_long_course(target: str, facts: dict[str, Any], repeat: int) -> dict[str, float]:
    from eventsourcing.application import Repository

    from coursebook.domain.ids import course_uuid

    app = _open(target)
    try:
        course = course_uuid("LONG-1")
        app.get_course("LONG-1")  # warm: first reads settle the zone and caches
        # The library's plain load: every event replayed by its own projector (a
        # repository without the application's aggregate cache and snapshots).
        plain = Repository(event_store=app.events)
        return {
            "get": _median_ms(lambda: plain.get(course), repeat),
            "as_of": _median_ms(lambda: app.get_course("LONG-1", as_of=facts["as_of"]),
                                repeat),
            "version": _median_ms(lambda: app.get_course("LONG-1", version=facts["version"]),
                                  repeat),
            "known_at": _median_ms(lambda: app.get_course("LONG-1",
                                                          known_at=facts["known_at"]),
                                   repeat),
            "history": _median_ms(lambda: app.get_history("LONG-1"), repeat),
            **_unchecked(app, facts, repeat),
        }
    finally:
        app.close()


def _unchecked(app: Any, facts: dict[str, Any], repeat: int) -> dict[str, float]:
    """The same reads with the tag checks switched off (the mapper's `check` and
    `check_row` just strip the tag): the cost of serving nothing unverified."""
    mapper = app.mapper
    mapper.check = lambda stored: bytes(stored.state)[:-32]
    mapper.check_row = lambda oid, version, topic, state, position=None: bytes(state)[:-32]
    try:
        return {
            "history_unchecked": _median_ms(lambda: app.get_history("LONG-1"), repeat),
            "as_of_unchecked": _median_ms(
                lambda: app.get_course("LONG-1", as_of=facts["as_of"]), repeat),
        }
    finally:
        del mapper.check, mapper.check_row


# -- (f) peak memory, each in its own process -----------------------------------------------
def measure_memory(operation: str, target: str, extra: str = "") -> float | None:
    done = subprocess.run(  # noqa: S603 (our own module)
        [sys.executable, "-m", "benchmarks.memory", operation, target, extra],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode != 0:
        return None
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"])


def million_records(source: Path, stored: int, path: Path) -> tuple[Path, int]:
    """A store of at least 1,000,000 records for figure (f): `source` and renamed copies
    of its records (for the views only; see `benchmarks.rebuild_views.multiply`)."""
    import contextlib
    import io
    import math
    import sqlite3

    from benchmarks.rebuild_views import multiply

    with contextlib.redirect_stdout(io.StringIO()):
        multiply(source, path, max(1, math.ceil(1_000_000 / max(stored, 1))))
    with contextlib.closing(sqlite3.connect(path)) as db:
        records = int(db.execute("SELECT max(rowid) FROM stored_events").fetchone()[0])
    return path, records


# -- (g) start-up ---------------------------------------------------------------------------
def _cli() -> list[str]:
    script = Path(sys.executable).with_name("coursebook")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "coursebook.adapters.entrypoints.cli"]


def compile_package() -> bool:
    """Write the package's bytecode, as `pip install` does for an installed wheel.

    An editable install under `PYTHONDONTWRITEBYTECODE=1` (these machines set it) would
    otherwise compile every module from source on every start of the command line.
    True if anything had to be written."""
    import compileall

    import coursebook

    package = Path(coursebook.__file__).parent
    cached = set(package.rglob("*.pyc"))
    compileall.compile_dir(str(package), quiet=1)
    return set(package.rglob("*.pyc")) != cached


def measure_startup(target: str, facts: dict[str, Any], repeat: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    compiled = compile_package()

    def timed(command: list[str]) -> float:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, check=False,  # noqa: S603
                                  env=env)
            times.append(time.perf_counter() - started)
            if done.returncode != 0:  # a refused call would be timed as a fast one
                raise RuntimeError(f"{command[1:]} failed: {done.stderr.decode()[-300:]}")
        return statistics.median(times)

    with tempfile.TemporaryDirectory(prefix="cb-startup-") as directory:
        log = str(Path(directory) / "coursebook.log")  # --log-file takes a regular file
        return {
            "compiled": float(compiled),
            "python": timed([sys.executable, "-c", "pass"]),
            "help": timed([*_cli(), "--help"]),
            "show": timed([*_cli(), "--db", target, "--log-file", log, "course", "show",
                           "LONG-1", "--as-of", facts["as_of"].isoformat()]),
        }


# -- the run --------------------------------------------------------------------------------
def machine(store: str, sizes: Sizes, quick: bool) -> dict[str, Any]:
    import eventsourcing
    import orjson

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "eventsourcing": eventsourcing.__version__
            if hasattr(eventsourcing, "__version__") else version("eventsourcing"),
            "orjson": orjson.__version__, "store": store, "quick": quick,
            "sizes": attrs.asdict(sizes),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


Step = tuple[str, int]


def run(*, store: str = "sqlite", sizes: Sizes | None = None, quick: bool = False,
        progress: Callable[[str, int], Callable[[int], None]] | None = None,
        directory: Path | None = None) -> dict[str, Any]:
    """Runs every measurement; returns the JSON document (machine and figures)."""
    import orjson

    from benchmarks.clinic import clinic_commands

    sizes = sizes or (Sizes.quick() if quick else Sizes())
    given = progress or (lambda _label, _total: (lambda _n: None))
    steps: dict[str, float] = {}
    began = [time.perf_counter(), ""]

    def track(label: str, total: int) -> Callable[[int], None]:
        if label:
            if began[1]:
                steps[str(began[1])] = round(time.perf_counter() - float(began[0]), 1)
            began[:] = [time.perf_counter(), label]
        return given(label, total)

    from coursebook.logs import reset_logging

    stores = Stores(store, directory)
    stream = _log_stream(stores)
    figures: list[Figure] = []
    try:
        # (a) one command per transaction, three designs
        a_commands = clinic_commands(max(1, sizes.commands // 13), seed=11)[:sizes.commands]
        advance = track("commands: coursebook, eventsourcing, CRUD+audit",
                        3 * len(a_commands))
        a = measure_commands(stores, a_commands, advance)
        cb, es, crud = a["coursebook"], a["eventsourcing"], a["crud"]
        figures += [
            Figure("commands_vs_crud", "commands/s, one transaction each (vs CRUD+audit)",
                   cb["per_s"], "commands/s", crud["per_s"], "CRUD+audit",
                   target="ratio >= 1.0"),
            Figure("commands_vs_eventsourcing",
                   "commands/s, one transaction each (vs plain eventsourcing)",
                   cb["per_s"], "commands/s", es["per_s"], "plain eventsourcing",
                   target="ratio >= 2.0"),
            Figure("command_latency_p50", "command latency p50", cb["p50_ms"], "ms",
                   crud["p50_ms"], "CRUD+audit", higher_is_better=False,
                   note=f"plain eventsourcing {es['p50_ms']:.2f} ms"),
            Figure("command_latency_p99", "command latency p99", cb["p99_ms"], "ms",
                   crud["p99_ms"], "CRUD+audit", higher_is_better=False,
                   note=f"plain eventsourcing {es['p99_ms']:.2f} ms"),
            Figure("command_cpu", "CPU time per command", cb["cpu_ms"], "ms",
                   crud["cpu_ms"], "CRUD+audit", higher_is_better=False,
                   target="value <= 0.25",
                   note=f"plain eventsourcing {es['cpu_ms']:.3f} ms"),
        ]

        # (a') many callers at once: group commit (benchmarks/concurrent.py)
        from benchmarks.concurrent import suite_figures

        track("commands: 8 concurrent callers, grouped and CRUD+audit", 1)
        figures += suite_figures(stores, a_commands)

        # (b) bulk import of the clinic's JSON Lines history
        commands = clinic_commands(sizes.courses)
        lines = b"\n".join(orjson.dumps(c) for c in commands)
        track(f"import: {len(commands)} JSON lines", 1)
        clinic = stores.new("clinic")
        b = measure_import(clinic, lines, len(commands))
        track("", 0)(1)
        figures.append(Figure(
            "import", "bulk import, each line atomic", b["per_s"], "commands/s",
            crud["per_s"], "CRUD+audit, one transaction per command", target="value >= 25000",
            note=f"{len(commands)} lines: {b['applied']} applied, {b['duplicates']} "
                 f"duplicates, {b['rejected']} rejected; {b['stored']} records stored; "
                 f"CPU {b['cpu_ms']:.3f} ms/line"))

        # (d) compliance as of, over every course
        advance = track("compliance --as-of", 1)
        d = measure_compliance(clinic, sizes.repeat if quick else 3)
        advance(1)
        limit = 2.0 * d["events"] / 110_000  # the target: 10,000 courses, 110,000 events
        figures.append(Figure(
            "compliance_as_of", f"compliance --as-of over {d['courses']} courses",
            d["seconds"], "s", d["read_decode"], "reading + decoding those events alone",
            higher_is_better=False, target=f"value <= {limit:.3f}",
            note=f"{d['events']} events read, {d['findings']} findings, CPU "
                 f"{d['cpu']:.2f} s; target 2 s for 10,000 courses of 110,000 events, "
                 f"scaled to the events read"))
        figures.append(Figure(
            "compliance_what_if",
            f"compliance --what-if {d['other']} over {d['courses']} courses",
            d["what_if"], "s", d["seconds"], "the recorded report (compliance --as-of)",
            higher_is_better=False,
            note=f"both judgements and their comparison: {d['added']} findings added, "
                 f"{d['removed']} removed"))

        # (d') recall of a lot, against a raw scan of the sessions
        advance = track("recall LOT", 1)
        r = measure_recall(clinic, sizes.repeat)
        advance(1)
        figures.append(Figure(
            "recall", f"recall of the most used lot ({r['sessions']} sessions)",
            r["seconds"], "s", r["scan"], "raw scan: every stored session read and decoded",
            higher_is_better=False, target="value <= 0.25",
            note=f"lot {r['lot']}: {r['sessions']} sessions in {r['courses']} courses, "
                 f"status of each as of the moment; the scan read {r['scanned']} "
                 f"session-lots"))

        # (d'') compliance as of now, from its view (benchmarks/compliance_now.py)
        from benchmarks import compliance_now

        advance = track("compliance now (view)", 1)
        figures += compliance_now.figures(stores, clinic, sizes.courses,
                                          own_store=sizes.now_full, repeat=sizes.repeat)
        advance(1)

        # (c) rebuild, against the raw limit and the library's per-event catch-up
        advance = track("rebuild: raw read, per-event catch-up, views",
                        min(b["stored"], sizes.catch_up))
        c = measure_rebuild(clinic, stores, sizes.catch_up, advance)
        available = c["rebuild_per_s"] is not None
        rebuild_note = "" if available else \
            "not available: coursebook.service.read_models.rebuild is not importable"
        figures += [
            Figure("rebuild", "rebuild all views from zero", c["rebuild_per_s"],
                   "events/s", None, "", target=("value >= 100000" if store == "sqlite"
                                                 else "value >= 50000"),
                   note=rebuild_note),
            Figure("rebuild_vs_raw", "rebuild vs raw read-and-decode limit",
                   c["rebuild_per_s"], "events/s", c["raw_per_s"],
                   "sqlite3/psycopg + orjson over the same rows", target="ratio >= 0.33",
                   note=rebuild_note),
            Figure("rebuild_vs_catchup", "rebuild vs the library's per-event catch-up",
                   c["rebuild_per_s"], "events/s", c["catchup_per_s"],
                   "one transaction per event", target="ratio >= 25", note=rebuild_note),
        ]

        # (e) time travel on a long course
        advance = track(f"a {sizes.long_course}-event course: show, history", 2)
        long_target = stores.new("long")
        facts = build_long_course(long_target, sizes.long_course)
        advance(1)
        e = measure_long_course(long_target, facts, sizes.repeat * 2)
        advance(1)
        n = facts["events"]
        for key, option in (("as_of", "--as-of"), ("version", "--version"),
                            ("known_at", "--known-at")):
            figures.append(Figure(
                f"course_show_{key}", f"course show {option} ({n} events)", e[key], "ms",
                e["get"], "plain repository.get", higher_is_better=False,
                target="value <= 5.0", note="also needs ratio >= 7"))
        figures.append(Figure(
            "course_history", f"course history ({n} events)", e["history"], "ms", e["get"],
            "plain repository.get", higher_is_better=False, target="value <= 50.0"))
        figures.append(Figure(
            "verified_history", f"course history ({n} events), every tag checked",
            e["history"], "ms", e["history_unchecked"], "the same read, tags not checked",
            higher_is_better=False, note="the cost of serving nothing unverified"))
        figures.append(Figure(
            "verified_as_of", f"course show --as-of ({n} events), every tag checked",
            e["as_of"], "ms", e["as_of_unchecked"], "the same read, tags not checked",
            higher_is_better=False, note="the cost of serving nothing unverified"))

        # (f) peak memory, each in a fresh process
        advance = track("peak memory (subprocesses)", 3)
        raw_mb = measure_memory("raw", clinic)
        advance(1)
        compliance_mb = measure_memory("compliance", clinic)
        advance(1)
        rebuild_mb = (measure_memory("rebuild", clinic) if available else None)
        rebuild_raw_mb = raw_mb
        rebuilt_records, memory_note = f"{c['events']:.0f} events", (
            "target: 1,000,000 events within 500 MB; measured at this run's size (the full "
            "SQLite run measures it on a store of a million records)")
        if available and store == "sqlite" and not quick:
            million = million_records(Path(clinic), int(b["stored"]), stores.path("million.db"))
            rebuild_mb = measure_memory("rebuild", str(million[0]))
            rebuild_raw_mb = measure_memory("raw", str(million[0]))
            rebuilt_records, memory_note = f"{million[1]:,} records", (
                "the import store and renamed copies of its records "
                "(benchmarks.rebuild_views.multiply)")
        advance(1)
        figures += [
            Figure("memory_rebuild", f"peak memory, rebuild ({rebuilt_records})",
                   rebuild_mb, "MB", rebuild_raw_mb, "raw read-and-decode",
                   higher_is_better=False, target="value <= 500",
                   note=memory_note if available else rebuild_note),
            Figure("memory_compliance",
                   f"peak memory, compliance --as-of ({d['courses']} courses)",
                   compliance_mb, "MB", raw_mb, "raw read-and-decode", higher_is_better=False),
        ]

        # (g) start-up
        advance = track("command line start-up", 1)
        g = measure_startup(long_target, facts, sizes.repeat)
        advance(1)
        figures += [
            Figure("cli_help", "coursebook --help, wall", g["help"], "s", g["python"],
                   "python -c pass", higher_is_better=False),
            Figure("cli_course_show", "coursebook course show --as-of, end to end",
                   g["show"], "s", g["python"], "python -c pass", higher_is_better=False,
                   target="value <= 0.3",
                   note="bytecode written first, as an installed wheel has it"
                   if g["compiled"] else ""),
        ]
    finally:
        reset_logging()
        stream.close()
        stores.close()
    steps[str(began[1])] = round(time.perf_counter() - float(began[0]), 1)
    return {"machine": {**machine(store, sizes, quick), "seconds_per_step": steps},
            "figures": {f.name: f.as_dict() for f in figures}}


# -- the command line -----------------------------------------------------------------------
def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit in ("commands/s", "events/s"):
        return f"{value:,.0f} {unit}"
    if unit == "MB":
        return f"{value:,.1f} MB"
    return f"{value:.3f} {unit}" if value < 10 else f"{value:,.1f} {unit}"


def render(document: dict[str, Any]) -> Any:
    from rich.table import Table

    m = document["machine"]
    table = Table(title=f"coursebook benchmarks ({m['store']}"
                        f"{', quick' if m['quick'] else ''}; {m['cores']} cores, {m['cpu']})")
    for column in ("figure", "coursebook", "baseline", "ratio", "target", "met"):
        table.add_column(column, justify="right" if column in ("ratio",) else "left")
    for figure in document["figures"].values():
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[figure["met"]]
        baseline = _format(figure["baseline"], figure["unit"])
        if figure["baseline_label"]:
            baseline += f" ({figure['baseline_label']})"
        table.add_row(figure["label"], _format(figure["value"], figure["unit"]),
                      baseline if figure["baseline"] is not None else "-",
                      "-" if figure["ratio"] is None else f"{figure['ratio']:.2f}x",
                      figure["target"] or "-", met)
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description="coursebook against its baselines")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: the whole run in under two minutes")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--courses", type=int, default=None,
                        help="courses in the imported clinic (full 6700, quick 400)")
    parser.add_argument("--commands", type=int, default=None,
                        help="commands sent one by one per design (full 3000, quick 600)")
    parser.add_argument("--long-course", type=int, default=None,
                        help="events of the long course (1000)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="repetitions of short timings (full 5, quick 3)")
    parser.add_argument("--catch-up", type=int, default=None,
                        help="events the per-event catch-up baseline processes "
                             "(full 20000, quick 1000)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the SQLite stores go (default: the temporary directory)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    args = parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    for key in ("courses", "commands", "long_course", "repeat", "catch_up"):
        if getattr(args, key) is not None:
            setattr(sizes, key, getattr(args, key))
    if args.courses is not None:
        sizes.now_full = False
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        current: dict[str, Any] = {}

        def track(label: str, total: int) -> Callable[[int], None]:
            if label:
                if "task" in current:
                    bar.update(current["task"], completed=bar.tasks[-1].total)
                current["task"] = bar.add_task(label, total=max(1, total))
            task = current["task"]
            return lambda n: bar.advance(task, n)

        document = run(store=args.store, sizes=sizes, quick=args.quick, progress=track,
                       directory=args.dir)
        if "task" in current:
            bar.update(current["task"], completed=bar.tasks[-1].total)
    Console(width=None if sys.stdout.isatty() else 200).print(render(document))
    if args.json is not None:
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        console.print(f"figures written to {args.json}")
