"""The results table: method x metric, mean ± std over folds, the fused row highlighted."""

from __future__ import annotations

from typing import Any


def results_table(metrics: dict[str, Any]):
    from rich.table import Table

    methods = metrics["methods"]
    names = list(next(iter(methods.values())))
    table = Table(title=f"{metrics['task']}: {metrics['folds']}-fold cross-validation (mean ± std)")
    table.add_column("method")
    for name in names:
        table.add_column(name, justify="right")
    for method, values in methods.items():
        style = "bold green" if method == "fusecpath" else None
        table.add_row(
            method, *(f"{values[m]['mean']:.3f} ± {values[m]['std']:.3f}" for m in names), style=style
        )
    return table
