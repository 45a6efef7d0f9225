"""What one command-line call costs end to end, on SQLite and on PostgreSQL (figures only).

    python -m benchmarks.cli_startup [--repeat 15] [--courses 20]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres] [--baseline DIR]

Builds the same small clinic in a SQLite file and in a throwaway PostgreSQL database,
then runs, interleaved so that a slow moment of the machine hits every row alike:
`python -c pass`, `coursebook course show C` on SQLite, on PostgreSQL as the command
line opens it (one plain connection), and on PostgreSQL through the library's
connection pool (`COURSEBOOK_POSTGRES_POOL=y`, what every call paid before). Prints the
median wall time and the median CPU time (user + system) of each. `--baseline DIR` (a
checkout of another revision, e.g. `git worktree add DIR main`) adds the two `course
show` rows run from that tree's package, interleaved with this one's: a before/after
pair taken at the same moment.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from benchmarks.clinic import END, ZONE, clinic_commands
from benchmarks.suite import _cli, compile_package
from coursebook.adapters.storage.keys import new_master_key_text
from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock


def build(target: str, courses: int, key: str) -> str:
    """A store holding `courses` courses of the synthetic clinic; returns one course id."""
    import orjson

    commands = clinic_commands(courses)
    app = open_store(target, create=True, clock=FixedClock(END),
                     extra_env={"COURSEBOOK_MASTER_KEY": key})
    try:
        app.initialise(ZONE)
        app.import_lines(b"\n".join(orjson.dumps(c) for c in commands))
    finally:
        app.close()
    return next(str(c["course_id"]) for c in commands if c.get("course_id"))


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of `command`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=False, env=env)  # noqa: S603
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{command[-4:]} failed: {done.stderr.decode()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def baseline_rows(tree: str, env: dict[str, str], targets: list[str],
                  show: list[str]) -> dict[str, tuple[list[str], dict[str, str]]]:
    """`course show` run by the same launcher from the package in `tree`, put first on the
    path (and compiled, as `compile_package` does for this tree's)."""
    import compileall

    compileall.compile_dir(str(Path(tree) / "coursebook"), quiet=1)
    base_env = {**env, "PYTHONPATH": str(Path(tree).resolve())}
    return {f"course show, {name}, baseline": ([*_cli(), "--db", target, *show], base_env)
            for name, target in zip(("SQLite", "PostgreSQL"), targets, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--courses", type=int, default=20)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--baseline", metavar="DIR", default=None,
                        help="a source tree of another revision to time beside this one")
    args = parser.parse_args()
    key = new_master_key_text()
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "COURSEBOOK_MASTER_KEY": key}
    env.pop("COURSEBOOK_POSTGRES_POOL", None)
    compile_package()
    server = urlsplit(args.postgres)
    database = f"cb_startup_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(args.postgres, autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        with tempfile.TemporaryDirectory(prefix="cb-startup-") as directory:
            sqlite_target = str(Path(directory) / "clinic.db")
            pg_target = urlunsplit((server.scheme, server.netloc, f"/{database}", "", ""))
            course = build(sqlite_target, args.courses, key)
            build(pg_target, args.courses, key)
            log = str(Path(directory) / "coursebook.log")
            show = ["--log-file", log, "course", "show", course]
            rows = {
                "python -c pass": ([sys.executable, "-c", "pass"], env),
                "course show, SQLite": ([*_cli(), "--db", sqlite_target, *show], env),
                "course show, PostgreSQL": ([*_cli(), "--db", pg_target, *show], env),
                "course show, PostgreSQL, pool": (
                    [*_cli(), "--db", pg_target, *show],
                    {**env, "COURSEBOOK_POSTGRES_POOL": "y"}),
            }
            if args.baseline:
                rows.update(baseline_rows(args.baseline, env, [sqlite_target, pg_target],
                                          show))
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
            for command, run_env in rows.values():  # warm the page cache
                timed(command, run_env)
            for _ in range(args.repeat):
                for name, (command, run_env) in rows.items():
                    samples[name].append(timed(command, run_env))
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(database)))
    print(f"{os.cpu_count()} CPU(s); median of {args.repeat} interleaved runs; "
          f"{args.courses} courses")
    print(f"{'':<32}{'wall s':>8}{'CPU s':>8}")
    for name, got in samples.items():
        print(f"{name:<32}{statistics.median(w for w, _ in got):>8.3f}"
              f"{statistics.median(c for _, c in got):>8.3f}")


if __name__ == "__main__":
    main()
