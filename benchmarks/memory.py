"""One operation in a fresh process, then its peak resident memory as one JSON line.

    python -m benchmarks.memory raw|compliance|rebuild|catchup TARGET

Run by the suite for figure (f): a fresh process per operation, so each peak is its own.
"""

from __future__ import annotations

import json
import resource
import sys


def main() -> None:
    operation, target = sys.argv[1], sys.argv[2]
    if operation == "raw":
        from benchmarks.reference import read_and_decode

        for _ in read_and_decode(target):
            pass
    else:
        import logging

        from coursebook.bootstrap import open_store

        logging.getLogger("coursebook").setLevel(logging.WARNING)  # no per-command records
        app = open_store(target)
        if operation == "compliance":
            from benchmarks.clinic import END


            app.compliance_report(as_of=END)
        elif operation == "rebuild":
            from benchmarks.suite import rebuild_function

            rebuild = rebuild_function()
            if rebuild is None:
                sys.exit(1)
            rebuild(app, name=None, progress=None)
        app.close()
    print(json.dumps({"operation": operation, "peak_mb": peak_mb()}))


def peak_mb() -> float:
    """This process's peak resident set (VmHWM). `ru_maxrss` is not used: it survives
    `exec`, so a child started by a big parent would report the parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
