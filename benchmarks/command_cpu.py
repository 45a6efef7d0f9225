"""CPU time per command and per imported line, with an optional profile.

    python -m benchmarks.command_cpu [--courses N] [--import] [--profile] [--dir DIR]

Runs the synthetic clinic's commands (`benchmarks.clinic`) through `Coursebook.execute`
one by one, or through `apply_lines` (what `coursebook import` runs) with `--import`, on
a SQLite store in DIR (default: /dev/shm when it exists, so the disk's fsync does not
hide the CPU), logging on, and prints the CPU time per command; `--profile` prints the
functions that take it instead. Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import pstats
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.clinic import END, ZONE, clinic_commands, iter_lines, staff_commands
from benchmarks.suite import Clock, _open
from coursebook.clock import FixedClock
from coursebook.errors import Rejected
from coursebook.logs import configure_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courses", type=int, default=150)
    parser.add_argument("--import", dest="bulk", action="store_true",
                        help="Through apply_lines (batches), not execute one by one.")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    shm = Path("/dev/shm")  # noqa: S108 (mkdtemp makes a private directory there)
    base = args.dir or (shm if shm.is_dir() else None)
    work = Path(tempfile.mkdtemp(prefix="coursebook-cpu-", dir=base))
    commands = [*staff_commands(), *clinic_commands(args.courses)]
    try:
        with open(work / "log.jsonl", "a", encoding="utf-8") as log:
            configure_logging(stream=log, json=True)
            clock = FixedClock(END if args.bulk else dt.datetime.fromisoformat(
                commands[0]["at"]))
            app = _open(str(work / "store.db"), create=True, clock=clock)
            app.initialise(ZONE)
            if args.bulk:
                lines = b"\n".join(iter_lines(commands))

                def run() -> None:
                    app.import_lines(lines)
            else:
                follow = Clock(clock).follow

                def run() -> None:
                    for command in commands:
                        follow(command)
                        with contextlib.suppress(Rejected):
                            app.execute(command)
            if args.profile:
                profile = cProfile.Profile()
                profile.runcall(run)
                pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
            else:
                started = time.process_time()
                run()
                cpu = time.process_time() - started
                unit = "line" if args.bulk else "command"
                print(f"{len(commands)} {unit}s: {cpu / len(commands) * 1000:.3f} ms CPU "
                      f"per {unit}")
            app.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
