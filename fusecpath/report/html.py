"""Self-contained HTML pages (inline CSS, images as data URIs; no script, no network, no server):

- ``write_run_report(run_dir)``: ``report.html`` of a fuse run folder, rendered from what the folder holds
  (metrics.json, predictions.csv, folds.json, model/config.json, the plots, the files' times);
- ``write_predict_index(out, rows, ...)``: ``index.html`` of a predict run, one card a slide with its
  attention heatmap over the thumbnail and its prediction.

Every number of the results table is also in ``data-*`` attributes, unrounded, so a test can read it back.
"""

from __future__ import annotations

import base64
import csv
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from fusecpath.files import write_atomic

PLOTS = ("roc.png", "km.png", "scatter.png")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;background:#f5f6f8}
header{background:#1f3a5f;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:14px 18px;margin:16px 0}
h2{font-size:17px;margin:0 0 10px;color:#1f3a5f}table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #e4e7ec;padding:5px 10px;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}th{background:#eef1f5;font-weight:600}
tr.fused td{background:#e8f5e9;font-weight:600}.ci{color:#5b6575;font-size:12px;font-weight:400}
.note{color:#5b6575;font-size:12px}figure{display:inline-block;margin:6px 12px 6px 0}
figure img{max-width:560px;border:1px solid #dde1e7}pre{background:#f2f4f7;padding:10px;overflow:auto;font-size:12px}
.yes{color:#b3261e;font-weight:600}.cards{display:flex;flex-wrap:wrap;gap:14px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px;width:420px}
.card img{width:100%;border:1px solid #e4e7ec}.card h3{margin:0 0 6px;font-size:15px;word-break:break-all}
.pred{font-size:16px;font-weight:700;color:#1f3a5f}table.text td,table.text th{text-align:left}
"""


# ---------------------------------------------------------------------------------------------- helpers


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except OSError:
        return []


def data_uri(path: Path) -> str:
    """A PNG (or any image) as a ``data:`` URI."""
    kind = {"jpg": "jpeg", "jpeg": "jpeg", "svg": "svg+xml"}.get(path.suffix.lower().lstrip("."), "png")
    return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def fmt(value: Any, digits: int = 3) -> str:
    """A metric as shown: three decimals, 'n/a' for a missing or non-finite value."""
    number = _number(value)
    return f"{number:.{digits}f}" if number is not None and math.isfinite(number) else "n/a"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], attrs: str = "") -> str:
    head = f"<thead><tr>{''.join(f'<th>{escape(h)}</th>' for h in header)}</tr></thead>" if header else ""
    body = "".join(f"<tr>{''.join(f'<td>{c}</td>' for c in row)}</tr>" for row in rows)
    return f"<table{attrs}>{head}<tbody>{body}</tbody></table>"


def _section(title: str, body: str, sid: str) -> str:
    return f'<section id="{sid}"><h2>{escape(title)}</h2>{body}</section>'


def _page(title: str, subtitle: str, sections: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header><main>{''.join(sections)}</main>"
        "</body></html>\n"
    )


# ---------------------------------------------------------------------------------------------- intervals


RANGES = {"auroc": (0.0, 1.0), "balanced_accuracy": (0.0, 1.0), "f1": (0.0, 1.0), "c_index": (0.0, 1.0)}
RANGES |= {"pearson": (-1.0, 1.0), "mse": (0.0, math.inf)}


def interval(summary: Mapping[str, Any], metric: str = "") -> tuple[float, float, str] | None:
    """(low, high, how) of a metric summary: its own ``ci95`` if metrics.json has one, else a 95 %
    t-interval of the mean over the finite per-fold scores, clipped to the metric's range (None with
    fewer than two scores)."""
    ci = summary.get("ci95")
    if isinstance(ci, Mapping):
        ci = [ci.get("low", ci.get("lo")), ci.get("high", ci.get("hi"))]
    if isinstance(ci, Sequence) and len(ci) == 2 and all(_number(v) is not None for v in ci):
        return float(ci[0]), float(ci[1]), "ci95 from metrics.json"
    folds = [v for v in _flat(summary.get("folds", [])) if math.isfinite(v)]
    if len(folds) < 2:
        return None
    from scipy.stats import t

    mean = sum(folds) / len(folds)
    sd = math.sqrt(sum((v - mean) ** 2 for v in folds) / (len(folds) - 1))
    half = float(t.ppf(0.975, len(folds) - 1)) * sd / math.sqrt(len(folds))
    low, high = RANGES.get(metric, (-math.inf, math.inf))
    how = f"95 % t-interval over {len(folds)} folds" + (
        ", clipped to the metric's range" if metric in RANGES else ""
    )
    return max(low, mean - half), min(high, mean + half), how


def _flat(values: Any) -> list[float]:
    """Per-fold scores as floats: a list, or a list of lists (one per seed), flattened."""
    out: list[float] = []
    for value in values if isinstance(values, list) else []:
        if isinstance(value, list):
            out += _flat(value)
        elif (number := _number(value)) is not None:
            out.append(number)
    return out


# ---------------------------------------------------------------------------------------------- run report


def _metric_names(methods: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for values in methods.values():
        names += [k for k, v in values.items() if isinstance(v, Mapping) and k not in names]
    return names


def results_section(metrics: Mapping[str, Any]) -> str:
    methods = metrics.get("methods") or {}
    names = _metric_names(methods)
    rows, hows = [], set()
    for method, values in methods.items():
        cells = [f'<td data-method="{escape(method)}">{escape(method)}</td>']
        for name in names:
            summary = values.get(name) or {}
            ci = interval(summary, name)
            attrs = f'data-method="{escape(method)}" data-metric="{escape(name)}"'
            if (mean := _number(summary.get("mean"))) is not None:
                attrs += f' data-mean="{mean!r}" data-std="{_number(summary.get("std"))!r}"'
            text = f"{fmt(summary.get('mean'))} ± {fmt(summary.get('std'))}"
            if ci is not None:
                attrs += f' data-low="{ci[0]!r}" data-high="{ci[1]!r}"'
                text += f' <span class="ci">[{fmt(ci[0])}, {fmt(ci[1])}]</span>'
                hows.add(ci[2])
            cells.append(f"<td {attrs}>{text}</td>")
        fused = ' class="fused"' if method == "fusecpath" else ""
        rows.append(f"<tr{fused}>{''.join(cells)}</tr>")
    head = "".join(f"<th>{escape(h)}</th>" for h in ["method", *names])
    table = f'<table id="results"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    note = (
        f'<p class="note">mean ± std over folds; [interval]: {escape("; ".join(sorted(hows)))}. '
        "The fused model's row is highlighted.</p>"
    )
    return _section(
        f"Results: {metrics.get('task', '?')}, {metrics.get('folds', '?')}-fold", table + note, "r"
    )


def folds_section(metrics: Mapping[str, Any]) -> str:
    methods = metrics.get("methods") or {}
    parts = []
    for name in _metric_names(methods):
        per = {m: _flat((v.get(name) or {}).get("folds", [])) for m, v in methods.items()}
        width = max((len(v) for v in per.values()), default=0)
        rows = [[escape(m), *(fmt(x) for x in v), *[""] * (width - len(v))] for m, v in per.items()]
        parts.append(
            f"<h3>{escape(name)}</h3>"
            + _table(["method", *(f"fold {i + 1}" for i in range(width))], rows, f' data-metric="{name}"')
        )
    return _section("Per-fold scores", "".join(parts) or "<p>no per-fold scores</p>", "folds")


def _cell(value: Any) -> str:
    if _number(value) is not None:
        return fmt(value)
    return escape(value if isinstance(value, str) else json.dumps(value))


def comparisons_section(comparisons: Any) -> str:
    """metrics.json's ``comparisons``, whatever its shape: a list of records or a mapping of them."""
    if isinstance(comparisons, Mapping):
        comparisons = [
            {"comparison": k, **(v if isinstance(v, Mapping) else {"value": v})}
            for k, v in comparisons.items()
        ]
    records = [c for c in comparisons if isinstance(c, Mapping)] if isinstance(comparisons, list) else []
    if not records:
        return ""
    keys = list(dict.fromkeys(k for c in records for k in c))
    return _section(
        "Comparisons", _table(keys, [[_cell(c.get(k, "")) for k in keys] for c in records]), "cmp"
    )


def plots_section(run_dir: Path) -> str:
    found = [run_dir / p for p in PLOTS if (run_dir / p).is_file()]
    figures = "".join(
        f'<figure><img alt="{escape(p.stem)}" src="{data_uri(p)}"><figcaption class="note">{escape(p.name)}'
        "</figcaption></figure>"
        for p in found
    )
    return _section("Plots (out-of-fold)", figures or "<p>no plot in the run folder</p>", "plots")


def fms_section(config: Mapping[str, Any] | None) -> str:
    if not config:
        return _section("Foundation models", "<p>no model/config.json in the run folder</p>", "fms")
    rows = []
    for role, key in (("fused (patch)", "patch_fms"), ("teacher (slide)", "slide_fms")):
        for fm in config.get(key) or []:
            gated = '<span class="yes">gated</span>' if fm.get("gated") else "open"
            rows.append(
                [
                    escape(str(fm.get("name"))),
                    role,
                    escape(str(fm.get("embed_dim", ""))),
                    escape(str(fm.get("license") or "unknown")),
                    gated,
                    escape(str(fm.get("source") or "")),
                    escape(str(fm.get("plugin") or "")),
                ]
            )
    table = _table(["FM", "role", "dim", "licence", "access", "source", "plugin"], rows, ' class="text"')
    return _section("Foundation models", table, "fms")


def config_section(config: Mapping[str, Any] | None) -> str:
    if not config:
        return ""
    shown = {k: v for k, v in config.items() if k not in ("patch_fms", "slide_fms")}
    return _section(
        "Run configuration (model/config.json)", f"<pre>{escape(json.dumps(shown, indent=2))}</pre>", "cfg"
    )


def _mtime(path: Path) -> float | None:
    return path.stat().st_mtime if path.exists() else None


def timings_section(run_dir: Path, metrics: Mapping[str, Any]) -> str:
    """Recorded timings if metrics.json or timings.json has them; else the phases between the files' times."""
    recorded = _read_json(run_dir / "timings.json") or metrics.get("timings") or {}
    rows = [
        [escape(str(k)), f"{v:.1f} s" if _number(v) is not None else escape(str(v))]
        for k, v in recorded.items()
    ]
    marks = [
        ("folds made (features ready, slides clustered)", _mtime(run_dir / "folds.json")),
        ("cross-validation done (metrics.json)", _mtime(run_dir / "metrics.json")),
        ("final model saved (model/)", _mtime(run_dir / "model" / "config.json")),
    ]
    marks = [(label, t) for label, t in marks if t is not None]
    for i, (label, t) in enumerate(marks):
        when = datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        rows.append([escape(label), when if i == 0 else f"{t - marks[i - 1][1]:.1f} s later"])
    body = _table(["step", "time"], rows, ' class="text"') if rows else "<p>no timings</p>"
    return _section("Timings", body, "time")


def predictions_section(rows: list[dict[str, str]]) -> str:
    if not rows:
        return _section("Predictions", "<p>no predictions.csv</p>", "pred")
    per_method = Counter(r.get("method", "") for r in rows)
    labels = Counter(r["label"] for r in rows if r.get("method") == "fusecpath" and "label" in r)
    text = (
        f"<p>predictions.csv: {len(rows)} out-of-fold rows, "
        f"{len({r.get('slide_id') for r in rows})} slides, {len(per_method)} methods.</p>"
    )
    if labels:
        text += _table(["label", "slides"], [[escape(k), str(v)] for k, v in sorted(labels.items())])
    return _section("Predictions", text, "pred")


def run_report_html(run_dir: Path) -> str:
    metrics = _read_json(run_dir / "metrics.json") or {}
    config = _read_json(run_dir / "model" / "config.json")
    task = (config or {}).get("task") or {}
    subtitle = f"{run_dir.resolve().name} · {metrics.get('task', '?')}"
    if isinstance(task, Mapping) and len(task.get("classes") or []) == 2:
        subtitle += f" · positive class {task['classes'][int(task.get('positive', 1))]!r}"
    subtitle += " · written " + datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        results_section(metrics),
        comparisons_section(metrics.get("comparisons")),
        plots_section(run_dir),
        folds_section(metrics),
        fms_section(config),
        predictions_section(_read_csv(run_dir / "predictions.csv")),
        timings_section(run_dir, metrics),
        config_section(config),
    ]
    return _page("fusecpath run report", subtitle, [s for s in sections if s])


def write_run_report(run_dir: str | Path) -> Path:
    """``run_dir/report.html`` from the run folder's files; returns its path."""
    run_dir = Path(run_dir)
    return write_atomic(run_dir / "report.html", run_report_html(run_dir))


# ---------------------------------------------------------------------------------------------- predict


def predict_index_html(
    rows: Sequence[Mapping[str, Any]], model: str, failures: Sequence[tuple[str, str]]
) -> str:
    cards = []
    for row in rows:
        heatmap = Path(str(row.get("heatmap", "")))
        image = (
            f'<img alt="heatmap of {escape(str(row["slide_id"]))}" src="{data_uri(heatmap)}">'
            if heatmap.is_file()
            else "<p>no heatmap</p>"
        )
        values = {k: v for k, v in row.items() if k not in ("slide_id", "slide", "heatmap", "geojson")}
        shown = [[escape(k), fmt(v) if isinstance(v, float) else escape(str(v))] for k, v in values.items()]
        headline = row.get("prediction")
        if headline is not None and isinstance(row.get(f"prob_{headline}"), float):
            headline = f"{headline} (p {row[f'prob_{headline}']:.3f})"
        cards.append(
            f'<div class="card" data-slide="{escape(str(row["slide_id"]))}"><h3>{escape(str(row["slide_id"]))}</h3>'
            + (f'<p class="pred">{escape(str(headline))}</p>' if headline is not None else "")
            + image
            + _table([], shown, ' class="values"')
            + "</div>"
        )
    sections = [_section(f"{len(rows)} slides", f'<div class="cards">{"".join(cards)}</div>', "slides")]
    if failures:
        sections.append(
            _section(
                "Not predicted",
                _table(["slide", "reason"], [[escape(s), escape(e)] for s, e in failures]),
                "fail",
            )
        )
    note = '<p class="note">Each image is the slide thumbnail with the attention of its patches (rank within the slide) overlaid.</p>'
    sections.insert(0, _section("Model", f"<p>{escape(model)}</p>{note}", "model"))
    return _page("fusecpath predictions", f"{len(rows)} slides · model {model}", sections)


def write_predict_index(
    path: str | Path, rows: Sequence[Mapping[str, Any]], model: str, failures: Sequence[tuple[str, str]] = ()
) -> Path:
    """The predict run's ``index.html``: each slide's heatmap over its thumbnail and its prediction."""
    return write_atomic(path, predict_index_html(rows, model, failures))
