"""Write throughput with 1, 2 and 4 writer processes, on PostgreSQL and on SQLite.

    .venv/bin/python benchmarks/pg_writers.py [--writers 1,2,4] [--commands 240]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres] [--no-sqlite]

Each writer is a process (as separate application servers would be) with its own
courses: it opens them, records the consultation, then adjusts intervals, one command
per transaction, as fast as it can. The writers start together behind a barrier; the
figure is all commands over the wall-clock time from the barrier to the last writer's
end. On PostgreSQL each run uses a fresh schema of a database the script creates and
drops; on SQLite a fresh file (WAL mode, several processes on one file). Prints figures
only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from coursebook.adapters.storage.keys import key_file_for
from coursebook.bootstrap import open_store
from coursebook.errors import Rejected

AT = "2024-03-05T10:00:00+01:00"
SCREENING = {"pregnant": False, "breastfeeding": False, "active_infection_at_site": False,
             "bleeding_disorder": False, "anticoagulants": False, "autoimmune_disease": False,
             "diabetes": False, "heart_condition": False, "allergies": [], "medications": []}
ADJUSTMENTS = 10  # per course, after opening and consulting it


def quiet() -> None:
    logging.getLogger("coursebook").setLevel(logging.WARNING)  # no per-command records


def writer_commands(writer: int, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    course = 0
    while len(out) < count:
        course_id = f"W{writer}-C{course}"

        def cmd(name: str, actor: str = "dr", /, course_id: str = course_id,
                **fields: Any) -> dict[str, Any]:
            return {"command": name, "command_id": f"{course_id}-{len(out)}", "at": AT,
                    "actor": actor, "course_id": course_id, **fields}

        out.append(cmd("open_course", "desk", patient_ref=f"P-{writer}-{course}",
                       indication="skin_rejuvenation"))
        out.append(cmd("record_consultation", consent=True, screening=SCREENING))
        for n in range(ADJUSTMENTS):
            out.append(cmd("adjust_interval", min_days=7, target_days=10 + n, max_days=40,
                           reason="benchmark adjustment"))
        course += 1
    return out[:count]


def writer(target: str, number: int, count: int, barrier: Any, results: Any) -> None:
    quiet()
    app = open_store(target, extra_env={"POSTGRES_POOL_SIZE": "1"})
    commands = writer_commands(number, count)
    refused = 0
    barrier.wait()
    for body in commands:
        try:
            app.execute(body)
        except Rejected:
            refused += 1
    results.put((time.perf_counter(), refused))
    app.close()


def prepare(target: str) -> None:
    app = open_store(target, create=True)
    app.initialise("Europe/Paris")
    app.execute({"command": "register_practitioner", "command_id": "reg", "at": AT,
                 "actor": "admin", "practitioner_id": "dr", "name": "Dr", "role": "physician",
                 "license_number": "L", "license_expires_on": "2030-01-01"})
    app.close()


def measure(target: str, writers: int, count: int) -> tuple[float, int]:
    prepare(target)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(writers + 1), ctx.Queue()
    processes = [ctx.Process(target=writer, args=(target, n, count, barrier, results))
                 for n in range(writers)]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    ends, refused = [], 0
    for _ in processes:
        end, n = results.get(timeout=600)
        ends.append(end)
        refused += n
    for process in processes:
        process.join()
    return max(ends) - started, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", default="1,2,4")
    parser.add_argument("--commands", type=int, default=240, help="per writer")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    quiet()
    counts = [int(n) for n in args.writers.split(",")]
    print(f"{os.cpu_count()} CPU(s); {args.commands} commands per writer; "
          "one command = one transaction (events + receipt)")
    print(f"{'store':<11}{'writers':>8}{'commands':>10}{'seconds':>9}{'commands/s':>12}"
          f"{'refused':>9}")

    def row(store: str, writers: int, seconds: float, refused: int) -> None:
        total = writers * args.commands
        print(f"{store:<11}{writers:>8}{total:>10}{seconds:>9.2f}{total / seconds:>12.0f}"
              f"{refused:>9}", flush=True)

    server = urlsplit(args.postgres)
    database = f"cb_bench_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        with psycopg.connect(args.postgres, autocommit=True, connect_timeout=3) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    except psycopg.Error as error:
        print(f"PostgreSQL skipped: {' '.join(str(error).split())}", file=sys.stderr)
        database = ""
    try:
        if database:
            for writers in counts:
                url = urlunsplit((server.scheme, server.netloc, f"/{database}",
                                  f"schema=w{writers}", ""))
                row("PostgreSQL", writers, *measure(url, writers, args.commands))
        if not args.no_sqlite:
            with tempfile.TemporaryDirectory(prefix="cb-bench-") as directory:
                for writers in counts:
                    path = str(Path(directory) / f"w{writers}.db")
                    row("SQLite", writers, *measure(path, writers, args.commands))
    finally:
        if database:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(database)))
            for writers in counts:  # the key file each store's `init` made
                key_file_for(urlunsplit((server.scheme, server.netloc, f"/{database}",
                                         f"schema=w{writers}", ""))).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
