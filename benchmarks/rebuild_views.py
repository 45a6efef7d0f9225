"""How fast the materialised views rebuild from zero (figures only, no assertions).

    python -m benchmarks.rebuild_views [--courses 10000] [--store PATH] [--repeat 3]
                                       [--profile VIEW] [--copies N] [--memory]
                                       [--postgres URL [--keep]]

Generates (or reuses, when `--store` names an existing file) a SQLite store holding the
synthetic clinic of `benchmarks.clinic` (about 11 commands a course), imported as
`coursebook import` does. 10,000 courses give about 210,000 stored records.

`--copies N` makes a store N times larger cheaply (figure (f): 10,000 courses and
`--copies 3` give about 1,000,000 stored records in a minute or two): the clinic's records
copied N - 1 more times after the first, each copy under fresh aggregate ids and with
its course and patient references renamed (`C-` to `C1-`, ...), so every copy is new
courses and patients to the views. Synthetic for the views only: each copied record is
tagged again with the store's key (the views check every record's tag), but the copies
have no links in the store's seal, so `coursebook verify` rejects such a store.

`--memory` runs one rebuild of every view in a fresh process and prints its peak
resident memory (`benchmarks.memory`).

`--postgres postgresql://user@host:port/DB` does the same on PostgreSQL: the clinic is
generated in database DB (created when missing; dropped at the end unless `--keep`, so
that a later run may reuse it).

Before the rebuilds, the raw limit: every stored record read (`sqlite3` / `psycopg`) and
its body decoded with `orjson` (`benchmarks.reference.read_and_decode`), the baseline
of the suite's `rebuild_vs_raw` figure; the ratio is printed beside each rebuild of
every view (events applied per second over stored records read per second).

Then, for each view, `read_models.rebuild(app, name)` (empty the view, read the log in
pages, decode, fold, executemany, commit each page with its position) and prints the
events of the view's topics applied per second, and the stored records per second.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import pstats
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from benchmarks.clinic import END, ZONE, clinic_commands
from benchmarks.reference import read_and_decode
from coursebook.adapters.storage.integrity import TAG_LEN, event_tag
from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock
from coursebook.service import read_models

BATCH = 5000


def generate(path: Path | str, courses: int) -> None:
    """The synthetic clinic of `benchmarks.clinic`, imported as `coursebook import` does."""
    started = time.perf_counter()
    app = open_store(str(path), create=True, clock=FixedClock(END))
    app.initialise(ZONE)
    lines = b"\n".join(orjson.dumps(c) for c in clinic_commands(courses))
    report = app.import_lines(lines).as_dict()
    total = app.recorder.max_notification_id()
    app.close()
    print(f"generated {courses} courses in {time.perf_counter() - started:.1f} s: "
          f"{report['applied']} applied, {len(report['rejected'])} refused, "
          f"{total} records stored in {path}", flush=True)


def rename(body: bytes, k: int) -> bytes:
    """A stored body with its course and patient references moved to copy `k`."""
    return body.replace(b'"C-', b'"C%d-' % k).replace(b'"P-', b'"P%d-' % k)


def multiply(source: Path, path: Path, copies: int) -> None:
    """`source` and `copies - 1` renamed copies of its records, in one SQLite file."""
    started = time.perf_counter()
    shutil.copyfile(source, path)
    key_file = source.with_name(source.name + ".key")  # the store's master key file
    if key_file.exists():
        copied = path.with_name(path.name + ".key")
        shutil.copyfile(key_file, copied)
        copied.chmod(0o600)  # a key file readable by others is refused
    app = open_store(str(source))
    key: bytes = app.mapper.key  # each copy's tag made again: the views check tags
    app.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    last = db.execute("SELECT max(rowid) FROM stored_events").fetchone()[0]
    for k in range(1, copies):
        after = 0
        while True:
            rows = db.execute("SELECT rowid, originator_id, originator_version, topic, state "
                              "FROM stored_events WHERE rowid > ? AND rowid <= ? "
                              "ORDER BY rowid LIMIT ?", (after, last, BATCH)).fetchall()
            if not rows:
                break
            renamed = []
            for _, originator, version, topic, state in rows:
                ident = uuid.uuid5(uuid.NAMESPACE_OID, f"{k}:{originator}").hex
                payload = rename(state[:-TAG_LEN], k)
                renamed.append((ident, version, topic,
                                payload + event_tag(key, ident, version, topic, payload)))
            with db:
                db.executemany("INSERT INTO stored_events (originator_id, originator_version, "
                               "topic, state) VALUES (?, ?, ?, ?)", renamed)
            after = rows[-1][0]
    total = db.execute("SELECT max(rowid) FROM stored_events").fetchone()[0]
    db.close()
    print(f"copied {source} {copies} times in {time.perf_counter() - started:.1f} s: "
          f"{total} records in {path}", flush=True)


def peak_memory(store: Path) -> None:
    """One rebuild of every view in a fresh process, and its peak resident memory."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory", "rebuild", str(store)],  # noqa: S603
                         check=True, capture_output=True, text=True).stdout
    print(f"rebuild of every view in a fresh process: peak "
          f"{json.loads(out.splitlines()[-1])['peak_mb']:.1f} MB "
          f"({time.perf_counter() - started:.1f} s wall)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, default=10_000)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default=None, metavar="VIEW",
                        help="Profile one rebuild of VIEW (or 'all') and print the top functions.")
    parser.add_argument("--copies", type=int, default=1,
                        help="The clinic's records this many times (renamed copies).")
    parser.add_argument("--memory", action="store_true",
                        help="Also the peak memory of a rebuild in a fresh process.")
    parser.add_argument("--postgres", default=None, metavar="URL",
                        help="A PostgreSQL database for the store instead of a file.")
    parser.add_argument("--keep", action="store_true",
                        help="Keep the --postgres database for the next run.")
    args = parser.parse_args()
    logging.getLogger("coursebook").setLevel(logging.WARNING)  # no per-command records
    if args.postgres:
        try:
            run(args, args.postgres, postgres_store(args.postgres, args.courses))
        finally:
            if not args.keep:
                drop_database(args.postgres)
        return
    shm = Path("/dev/shm")  # noqa: S108 (a scratch store of synthetic data)
    scratch = shm if shm.is_dir() else Path(tempfile.gettempdir())
    store = args.store or scratch / f"coursebook-bench-views-{args.courses}.db"
    if not store.exists():
        generate(store, args.courses)
    if args.copies > 1:
        larger = store.with_name(f"{store.stem}x{args.copies}{store.suffix}")
        if not larger.exists():
            multiply(store, larger, args.copies)
        store = larger
    if args.memory:
        peak_memory(store)
    run(args, str(store), str(store))


def postgres_store(url: str, courses: int) -> str:
    """The database of `url`, created and filled with the clinic unless it holds a
    store already."""
    import psycopg
    from psycopg import sql

    server, _, name = url.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT to_regclass('coursebook_events')").fetchone()
    if found is None or found[0] is None:
        generate(url, courses)
    return url


def drop_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    from coursebook.adapters.storage.keys import key_file_for

    server, _, name = url.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
    key_file_for(url).unlink(missing_ok=True)


def raw_rate(target: str, repeat: int) -> tuple[float, float]:
    """Stored records read and decoded per second (wall, CPU), best of `repeat`."""
    walls, cpus, count = [], [], 0
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        count = sum(read_and_decode(target))
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - started_cpu)
    return count / min(walls), count / min(cpus)


def run(args: argparse.Namespace, label: str, target: str) -> None:
    raw_wall, raw_cpu = raw_rate(target, args.repeat)
    print(f"raw read-and-decode: {raw_wall:,.0f} records/s wall, {raw_cpu:,.0f} records/s "
          f"cpu (best of {args.repeat})", flush=True)
    app = open_store(target)
    try:
        head = app.recorder.max_notification_id() or 0
        print(f"store {label}: {head} stored records")
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
                  f"{head / wall:,.0f} stored records/s of the log)"
                  + ("" if name else f"; vs raw: {events / wall / raw_wall:.2f} x wall, "
                     f"{events / cpu / raw_cpu:.2f} x cpu"), flush=True)
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
