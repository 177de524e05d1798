"""What `make demo` measures, and how long it takes: the demo's table, recorded.

    python benchmarks/demo.py [--out DIR] [--seeds 0,1,2] [--write]

Runs ``fusecpath.demo.run_demo`` (the same call as ``fusecpath demo``; the cohort is written afresh in a
new folder unless --out names one that has it) and records its wall time and every method's AUROC with
its 95 % interval and paired difference from FuseCPath, so that the README can point here instead of
quoting figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def table(metrics: dict) -> list[list]:
    rows = []
    for name, values in metrics["methods"].items():
        a = values["auroc"]
        diff = metrics["comparisons"].get(name, {}).get("auroc")
        cell = (
            ""
            if diff is None
            else f"{diff['difference']:+.3f} [{diff['ci95'][0]:+.3f}, {diff['ci95'][1]:+.3f}]"
            + (" *" if diff["excludes_zero"] else "")
        )
        rows.append([name, round(a["mean"], 3), f"[{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}]", cell])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--write", action="store_true", help="save benchmarks/results/demo.json")
    args = parser.parse_args()
    from fusecpath.demo import run_demo

    out = args.out or Path(tempfile.mkdtemp(prefix="fusecpath-demo-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    start = time.perf_counter()
    result = run_demo(out, seeds)
    wall = time.perf_counter() - start
    rows = table(result.metrics)
    print(f"demo: {len(rows)} methods, seeds {args.seeds}: {wall:.0f} s ({wall / 60:.1f} min)")
    for row in rows:
        print(f"  {row[0]:26s} {row[1]:.3f} {row[2]}  {row[3]}")
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from _results import write_results

        metrics = result.metrics
        text = (
            f"`make demo`'s run: complementary feature cohort, 100 slides, {metrics['folds']} folds x seeds "
            f"{args.seeds}, preset {metrics['preset']}; {wall:.0f} s in all (cohort included). "
            "Intervals: Nadeau-Bengio corrected resampled t over (seed, fold) scores; * marks a paired "
            "difference whose interval excludes 0."
        )
        section = {
            "heading": "AUROC by method",
            "text": text,
            "columns": ["method", "AUROC", "95 % interval", "fusecpath − method [95 %]"],
            "rows": rows,
        }
        print(write_results(__file__, "The demo (`make demo`)", [section]))


if __name__ == "__main__":
    main()
