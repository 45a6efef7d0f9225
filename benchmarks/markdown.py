"""A figures file as a Markdown table (for docs/performance.md).

    python -m benchmarks.markdown FIGURES.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.suite import _format


def table(document: dict[str, object]) -> str:
    figures = document["figures"]
    assert isinstance(figures, dict)
    lines = ["| figure | coursebook | baseline | ratio | target | met |",
             "|---|---|---|---|---|---|"]
    for name, f in figures.items():
        baseline = "-" if f["baseline"] is None else \
            f"{_format(f['baseline'], f['unit'])} ({f['baseline_label']})"
        ratio = "-" if f["ratio"] is None else f"{f['ratio']:.2f}x"
        met = {True: "yes", False: "**no**", None: "-"}[f["met"]]
        value = _format(f["value"], f["unit"])
        if f["value"] is None and f["note"]:
            value = "n/a (see note)"
        lines.append(f"| {f['label']} (`{name}`) | {value} | {baseline} | {ratio} | "
                     f"{f['target'] or '-'} | {met} |")
    notes = [f"- `{name}`: {f['note']}" for name, f in figures.items() if f["note"]]
    return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "")


def main() -> None:
    document = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    machine = document["machine"]
    print(f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['platform']}, "
          f"Python {machine['python']}, SQLite {machine['sqlite']}, store "
          f"{machine['store']}{', quick' if machine['quick'] else ''}, sizes "
          f"{machine['sizes']}, {machine['date']}.\n")
    print(table(document))


if __name__ == "__main__":
    main()
