"""Commands from many callers at once: coursebook's group commit against CRUD + audit.

    python -m benchmarks.concurrent [--store sqlite|postgres] [--commands N]
        [--callers 8] [--processes P] [--dir DIR]

The synthetic clinic's commands (`benchmarks.clinic`) are shared out among the callers
by patient (each caller keeps its patients' commands in their order) and sent as fast
as each caller can, all released together. Coursebook: the threads of a process share
one instance, whose `execute` groups the commands arriving together into one
transaction. CRUD + audit: each thread has its own connection and each command its own
transaction (`benchmarks.reference.CrudAudit`). With `--processes P` the callers are P
processes of callers/P threads each, for both designs. The figures: commands/s over
the wall time from the release to the last caller's end, latency p50/p99 over every
call, CPU per command (the processes' own). Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["measure_concurrent", "share_out"]

Plan = list[dict[str, Any]]
LOCK_TIMEOUT = 30.0
"""Seconds a CRUD + audit connection waits for SQLite's write lock."""


def share_out(commands: list[dict[str, Any]], callers: int) -> tuple[Plan, list[Plan]]:
    """The staff's commands (sent first, alone), and one plan per caller: every command of
    one patient's courses goes to the same caller, in the order given."""
    staff = [c for c in commands if c["command"] == "register_practitioner"]
    plans: list[Plan] = [[] for _ in range(callers)]
    for command in commands:
        if command["command"] == "register_practitioner":
            continue
        course = str(command.get("course_id", ""))
        digits = "".join(ch for ch in course if ch.isdigit())
        plans[(int(digits) // 2 if digits else 0) % callers].append(command)
    return staff, plans


def _drive(execute: Callable[[dict[str, Any]], Any], plan: Plan) -> list[float]:
    from coursebook.errors import Rejected

    latencies = []
    for command in plan:
        begun = time.perf_counter()
        with contextlib.suppress(Rejected):
            execute(command)
        latencies.append(time.perf_counter() - begun)
    return latencies


def _threads(executors: list[Callable[[dict[str, Any]], Any]], plans: list[Plan],
             barrier: Any) -> tuple[float, float, list[float]]:
    """Runs each plan in a thread of its own behind `barrier`; returns (release time,
    end time, latencies)."""
    inner = threading.Barrier(len(plans) + 1)
    out: list[list[float]] = [[] for _ in plans]
    failed: list[BaseException] = []

    def main(n: int) -> None:
        inner.wait()
        try:
            out[n] = _drive(executors[n], plans[n])
        except BaseException as error:
            failed.append(error)
            raise

    threads = [threading.Thread(target=main, args=(n,)) for n in range(len(plans))]
    for thread in threads:
        thread.start()
    if barrier is not None:
        barrier.wait()
    inner.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]
    return started, time.perf_counter(), [x for latencies in out for x in latencies]


def _open_design(design: str, target: str, threads: int) -> tuple[list[Any], Callable[[], None]]:
    """The executors of `threads` callers of one process, and how to close them."""
    if design == "coursebook":
        from benchmarks.clinic import END
        from benchmarks.suite import _open
        from coursebook.clock import FixedClock

        app = _open(target, clock=FixedClock(END))
        return [app.execute] * threads, app.close
    from benchmarks.reference import CrudAudit

    def connect() -> Any:
        """Used by one thread, not always its maker; waiting for the write lock as long
        as coursebook's writers may (the driver's default 5 s gives up under load)."""
        return sqlite3.connect(target, isolation_level=None, check_same_thread=False,
                               timeout=LOCK_TIMEOUT)

    cruds = [CrudAudit.postgres(target) if target.startswith("postgresql://")
             else CrudAudit(connect) for _ in range(threads)]
    return [c.execute for c in cruds], lambda: [c.close() for c in cruds] and None


def _process_main(design: str, target: str, plans: list[Plan], barrier: Any,
                  results: Any) -> None:
    import logging

    logging.getLogger("coursebook").setLevel(logging.WARNING)
    executors, close = _open_design(design, target, len(plans))
    cpu = time.process_time()
    started, ended, latencies = _threads(executors, plans, barrier)
    results.put((started, ended, latencies, time.process_time() - cpu))
    close()


def prepare(design: str, target: str, staff: Plan) -> None:
    """A fresh store of `design` with the staff registered."""
    if design == "coursebook":
        from benchmarks.clinic import END, ZONE
        from benchmarks.suite import _open
        from coursebook.clock import FixedClock

        app = _open(target, create=True, clock=FixedClock(END))
        app.initialise(ZONE)
        for command in staff:
            app.execute(command)
        app.close()
    else:
        from benchmarks.reference import CrudAudit

        crud = (CrudAudit.postgres(target) if target.startswith("postgresql://")
                else CrudAudit.sqlite_file(target))
        crud.close()


def measure_concurrent(design: str, target: str, commands: list[dict[str, Any]],
                       callers: int = 8, processes: int = 1) -> dict[str, float]:
    """`callers` callers of `design` on a fresh store at `target`, in `processes`
    processes (1: threads of this process)."""
    staff, plans = share_out(commands, callers)
    prepare(design, target, staff)
    sent = sum(len(plan) for plan in plans)
    if processes <= 1:
        executors, close = _open_design(design, target, callers)
        cpu = time.process_time()
        started, ended, latencies = _threads(executors, plans, None)
        cpu = time.process_time() - cpu
        close()
    else:
        ctx = multiprocessing.get_context("spawn")
        barrier, results = ctx.Barrier(processes + 1), ctx.Queue()
        workers = [ctx.Process(target=_process_main,
                               args=(design, target, plans[p::processes], barrier, results))
                   for p in range(processes)]
        for worker in workers:
            worker.start()
        barrier.wait()
        got = [results.get(timeout=900) for _ in workers]
        for worker in workers:
            worker.join()
        started = min(g[0] for g in got)
        ended = max(g[1] for g in got)
        latencies = [x for g in got for x in g[2]]
        cpu = sum(g[3] for g in got)
    from benchmarks.suite import _percentile

    return {"per_s": sent / (ended - started), "p50_ms": _percentile(latencies, 0.5) * 1000,
            "p99_ms": _percentile(latencies, 0.99) * 1000, "cpu_ms": cpu / sent * 1000,
            "commands": sent}


def main() -> None:
    import logging

    from benchmarks.clinic import clinic_commands

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--commands", type=int, default=3000)
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    logging.getLogger("coursebook").setLevel(logging.WARNING)
    from benchmarks.suite import Stores

    commands = clinic_commands(max(1, args.commands // 13), seed=11)[:args.commands]
    stores = Stores(args.store, args.dir or Path(tempfile.gettempdir()))
    try:
        for design in ("coursebook", "crud"):
            for callers in sorted({1, args.callers}):
                processes = args.processes if callers > 1 else 1
                figure = measure_concurrent(design, stores.new(f"{design}{callers}"),
                                            commands, callers, processes)
                print(f"{design:<11} {callers} callers in {processes} process(es): "
                      f"{figure['per_s']:,.0f} commands/s, p50 {figure['p50_ms']:.2f} ms, "
                      f"p99 {figure['p99_ms']:.2f} ms, CPU {figure['cpu_ms']:.3f} ms/command",
                      flush=True)
    finally:
        stores.close()


if __name__ == "__main__":
    main()


def suite_figures(stores: Any, commands: list[dict[str, Any]], callers: int = 8,
                  processes: int = 4) -> list[Any]:
    """The suite's figures for concurrent callers (`python -m benchmarks`): threads of
    one process on every store; on PostgreSQL also `processes` processes of
    callers/processes threads each. Each beside CRUD + audit with as many callers."""
    from benchmarks.suite import Figure

    runs = [("threads", 1)] + ([("processes", processes)] if stores.kind == "postgres"
                               else [])
    figures = []
    for how, count in runs:
        cb = measure_concurrent("coursebook", stores.new(f"conc_cb_{how}"), commands,
                                callers, count)
        crud = measure_concurrent("crud", stores.new(f"conc_crud_{how}"), commands,
                                  callers, count)
        shape = (f"{callers} threads" if count == 1
                 else f"{callers} callers in {count} processes")
        suffix = "" if count == 1 else "_processes"
        figures += [
            Figure(f"commands_concurrent{suffix}",
                   f"commands/s, {shape}, grouped (vs CRUD+audit, {shape})",
                   cb["per_s"], "commands/s", crud["per_s"],
                   "CRUD+audit, one transaction per command", target="ratio >= 1.0",
                   note=f"p50 {cb['p50_ms']:.2f} ms (CRUD+audit {crud['p50_ms']:.2f} ms); "
                        f"CPU {cb['cpu_ms']:.3f} ms/command (CRUD+audit "
                        f"{crud['cpu_ms']:.3f} ms)"),
            Figure(f"command_latency_p99_concurrent{suffix}",
                   f"command latency p99, {shape}", cb["p99_ms"], "ms", crud["p99_ms"],
                   "CRUD+audit", higher_is_better=False),
        ]
    return figures
