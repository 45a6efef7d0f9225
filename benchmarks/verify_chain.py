"""How long sealing and `verify` take over a large store (figures only, no assertions).

    python -m benchmarks.verify_chain [--courses 2000] [--repeat 3]

Builds a fresh SQLite store of `--courses` synthetic courses (about 11 commands each,
through the application, as `compliance_asof.py` does), then times the first catch-up of
the seal chain (every event), `verify_store` (every tag and link checked), and the
`coursebook verify` command in a new process.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.compliance_asof import build_store, timed
from coursebook.adapters.storage.integrity import catch_up, verify_store
from coursebook.bootstrap import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("coursebook").setLevel(logging.WARNING)  # no per-command records
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "verify-bench.db"
        build_store(store, args.courses)
        app = open_store(str(store))
        try:
            total = app.recorder.max_notification_id() or 0
            started = time.perf_counter()
            sealed = catch_up(app.seal_chain)
            elapsed = time.perf_counter() - started
            print(f"store: {total} stored records; first catch-up sealed {sealed} in "
                  f"{elapsed:.2f} s ({sealed / max(elapsed, 1e-9):,.0f} events/s)")
            result = timed("verify_store (tags + chain, all events)", args.repeat,
                           lambda: verify_store(app.seal_chain))
            print(f"ok: {result['ok']}, events: {result['events']}")
        finally:
            app.close()
        command = [str(Path(sys.executable).with_name("coursebook")), "--db", str(store),
                   "--format", "json", "verify"]
        timed("`coursebook verify` (new process)", args.repeat,
              lambda: subprocess.run(  # noqa: S603 (our own console script)
                  command, check=True, capture_output=True,
                  env={**os.environ, "PYTHONWARNINGS": "ignore"}), cpu=False)


if __name__ == "__main__":
    main()
