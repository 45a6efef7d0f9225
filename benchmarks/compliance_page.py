"""How big the compliance page of a large clinic is, and how long Chromium takes to load it
(figures only).

    python -m benchmarks.compliance_page [--copies 179] [--runs 3] [--out DIR]

It builds the demo clinic (`coursebook demo`), copies its courses `--copies` times under
new ids (179 copies: about 10,000 courses, the page `tests/e2e/test_compliance_page_large.py`
checks), writes the page, and prints its size, how many elements a browser builds for it,
and Chromium's own Navigation Timing of it (`domInteractive`: parsed; `loadEventEnd`:
loaded and laid out), measured by loading the page in an iframe of a measuring page
dumped with `chromium --headless --dump-dom`: browser start-up is not counted.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import attrs

MEASURE = """<!DOCTYPE html><body><div id="out">pending</div><script>
var f = document.createElement("iframe"); f.style.width = "1280px"; f.style.height = "1600px";
f.onload = function () {
  var n = f.contentWindow.performance.getEntriesByType("navigation")[0];
  document.getElementById("out").textContent = "figures " + Math.round(n.domInteractive -
    n.fetchStart) + " " + Math.round(n.loadEventEnd - n.fetchStart) + " " +
    f.contentDocument.getElementsByTagName("*").length;
};
f.src = PAGE; document.body.appendChild(f);
</script>"""


def large_page(directory: Path, copies: int) -> tuple[Path, int]:
    from coursebook import open_store

    store = directory / "demo.db"
    command = [sys.executable, "-m", "coursebook.adapters.entrypoints.cli", "--db",
               str(store), "demo"]
    subprocess.run(command, capture_output=True, check=True,  # noqa: S603 (our own CLI)
                   timeout=600)
    app = open_store(str(store))
    try:
        report = app.compliance_report()
        folded = dict(report.courses)  # a report of now folds its courses from the store
    finally:
        app.close()
    courses, findings = {}, []
    for copy in range(copies):
        for course_id, state in folded.items():
            courses[f"{course_id}-{copy:03d}"] = attrs.evolve(
                state, course_id=f"{course_id}-{copy:03d}")
        findings += [attrs.evolve(f, course_id=f"{f.course_id}-{copy:03d}")
                     for f in report.findings if f.course_id is not None]
    findings += [f for f in report.findings if f.course_id is None]
    findings.sort(key=lambda f: f.sort_key())
    page = directory / "compliance.html"
    page.write_text(attrs.evolve(report, courses=courses, findings=findings).html(),
                    encoding="utf-8")
    return page, len(courses)


def chromium_timing(chromium: str, page: Path, directory: Path) -> tuple[int, int, int]:
    """(ms to domInteractive, ms to the end of the load event, elements) of one load."""
    measure = directory / "measure.html"
    measure.write_text(MEASURE.replace("PAGE", repr(page.as_uri())), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--allow-file-access-from-files", f"--user-data-dir={directory / 'profile'}",
             "--window-size=1300,1700", "--dump-dom", measure.as_uri()]
    done = subprocess.run([chromium, *flags],  # noqa: S603 (the installed browser)
                          capture_output=True, text=True, timeout=600, check=True)
    found = re.search(r"figures (\d+) (\d+) (\d+)", done.stdout)
    if found is None:
        raise SystemExit("the measuring page reported nothing (Chromium too old?)")
    parsed, loaded, elements = map(int, found.groups())
    return parsed, loaded, elements


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compliance_page")
    parser.add_argument("--copies", type=int, default=179)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the page here (default: a temporary directory)")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.out or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        page, courses = large_page(directory, args.copies)
        size = page.stat().st_size
        print(f"page: {courses} courses, {size / 1e6:.2f} MB ({page})")
        if chromium is None:
            print("Chromium is not installed: no timings")
            return
        runs = [chromium_timing(chromium, page, directory) for _ in range(args.runs)]
        parsed = [run[0] / 1000 for run in runs]
        loaded = [run[1] / 1000 for run in runs]
        print(f"elements built on load: {runs[0][2]}")
        print(f"Chromium domInteractive: median {statistics.median(parsed):.2f} s "
              f"(range {min(parsed):.2f}-{max(parsed):.2f} s, {args.runs} runs)")
        print(f"Chromium load event end: median {statistics.median(loaded):.2f} s "
              f"(range {min(loaded):.2f}-{max(loaded):.2f} s, {args.runs} runs)")


if __name__ == "__main__":
    main()
