"""The benchmark suite runs end to end at a tiny size and writes its JSON document.

No figure is judged here (timings on a shared machine prove nothing); only the shape of
the document: one entry per figure of issue 6, each with the same keys.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {
    "commands_vs_crud", "commands_vs_eventsourcing", "command_latency_p50",
    "command_latency_p99", "command_cpu", "import", "compliance_as_of", "rebuild",
    "rebuild_vs_raw", "rebuild_vs_catchup", "course_show_as_of", "course_show_version",
    "course_show_known_at", "course_history", "memory_rebuild", "memory_compliance",
    "cli_help", "cli_course_show", "verified_history", "verified_as_of", "recall",
    "compliance_what_if", "compliance_now", "commands_concurrent",
    "command_latency_p99_concurrent",
}
KEYS = {"value", "unit", "baseline", "ratio", "target", "met"}


def test_the_suite_writes_every_figure_with_its_baseline_and_target(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--courses", "12", "--commands", "60",
         "--long-course", "40", "--repeat", "1", "--catch-up", "50", "--json", str(out),
         "--dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(out.read_text(encoding="utf-8"))

    assert document["machine"]["store"] == "sqlite"
    assert document["machine"]["cores"] >= 1
    assert set(document["figures"]) == FIGURES
    for name, figure in document["figures"].items():
        assert set(figure) >= KEYS, name
        if figure["target"] is None or figure["value"] is None:
            assert figure["met"] is None, name
            continue
        subject, op, threshold = figure["target"].split()
        got = figure["ratio"] if subject == "ratio" else figure["value"]
        if got is None:
            assert figure["met"] is None, name
        else:  # "met" says what the target says of the figure printed beside it
            expected = got >= float(threshold) if op == ">=" else got <= float(threshold)
            assert figure["met"] is expected, name
    assert document["figures"]["commands_vs_crud"]["value"] > 0
    assert document["figures"]["commands_vs_crud"]["baseline"] > 0
    assert "commands/s" in done.stdout  # the table on the terminal
    assert list(tmp_path.iterdir()) == [out]  # the stores were removed
