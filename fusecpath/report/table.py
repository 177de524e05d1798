"""The results table: method x metric, mean [95 % interval] over every (seed, fold) score, and each
baseline's paired difference from FuseCPath on the selection metric (* where its interval excludes 0)."""

from __future__ import annotations

from collections import Counter
from typing import Any

SELECTION = {"classification": "auroc", "regression": "pearson", "survival": "c_index"}


def _cell(value: dict[str, Any]) -> str:
    lo, hi = value.get("ci95", [None, None])
    if lo is None:
        return f"{value['mean']:.3f} ± {value['std']:.3f}"
    return f"{value['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def guard_picks(guard: dict[str, Any]) -> str:
    """How often the guard kept the fused model, and what it took instead, most often first:
    "fusecpath in X of N folds; abmil-uni Y, ..."."""
    chosen = Counter(c["method"] for c in guard["chosen"])
    kept = chosen.pop("fusecpath", 0)
    others = ", ".join(f"{name} {count}" for name, count in chosen.most_common())
    return f"fusecpath in {kept} of {len(guard['chosen'])} folds" + (f"; {others}" if others else "")


def results_table(metrics: dict[str, Any]):
    from rich.table import Table

    methods = metrics["methods"]
    names = list(next(iter(methods.values())))
    seeds = metrics.get("seeds", [0])
    key = SELECTION.get(metrics["task"], names[0])
    comparisons = metrics.get("comparisons", {})
    title = (
        f"{metrics['task']}: {metrics['folds']}-fold cross-validation x {len(seeds)} seed"
        f"{'s' if len(seeds) != 1 else ''} — mean [95 % interval]"
    )
    caption = f"Δ: fusecpath − method on {key}, paired; * interval excludes 0"
    for guard, record in metrics.get("guards", {}).items():
        caption += f"\n{guard} (by inner validation): {guard_picks(record)}"
    table = Table(title=title, caption=caption)
    table.add_column("method")
    for name in names:
        table.add_column(name, justify="right")
    if comparisons:
        table.add_column(f"Δ {key} [95 %]", justify="right")
    for method, values in methods.items():
        style = "bold green" if method == "fusecpath" else None
        row = [method, *(_cell(values[m]) for m in names)]
        if comparisons:
            diff = comparisons.get(method, {}).get(key)
            row.append(
                ""
                if diff is None
                else f"{diff['difference']:+.3f} [{diff['ci95'][0]:+.3f}, {diff['ci95'][1]:+.3f}]"
                + (" *" if diff["excludes_zero"] else "")
            )
        table.add_row(*row, style=style)
    return table
