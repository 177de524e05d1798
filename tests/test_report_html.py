"""report.html of a fuse run: self-contained, tolerant of the richer metrics.json (intervals, seeds,
comparisons), and checked in headless Chromium: the screenshot shows something and the rendered table's
numbers are metrics.json's. (predict's index.html is checked the same way in test_inference.py.)"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import browser  # noqa: E402

from fusecpath.report.html import fmt, interval, write_run_report  # noqa: E402


def _tiny(**kw):
    from fusecpath.fusion import FuseOptions
    from fusecpath.training.loop import TrainConfig

    settings = dict(
        folds=3, n_clusters=4, per_cluster=3, n_bags=3, arch={"hidden": 16, "n_heads": 2}, models=("abmil",)
    )
    train = TrainConfig(epochs=2, optimizer="adamw", lr=1e-3, batch_size=8)
    return FuseOptions(**{**settings, "train": train, "progress": False, **kw})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A fuse run (classification, baselines, a slide-FM teacher) on a small feature store."""
    import torch

    from fusecpath.fusion import fuse
    from fusecpath.synthetic.features import write_feature_store

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("report")
    labels = write_feature_store(root / "features")
    fms = ["hed-stain", "gabor-texture", "mean-hed-stain"]
    fuse(fms, labels, "classification", root / "run", features=root / "features", options=_tiny())
    return root / "run"


def test_fuse_leaves_a_self_contained_report(run):
    text = (run / "report.html").read_text()
    browser.self_contained(text)
    metrics = json.loads((run / "metrics.json").read_text())
    for method in metrics["methods"]:
        assert f'data-method="{method}"' in text
    for section in ("Per-fold scores", "Foundation models", "Timings", "Run configuration", "roc.png"):
        assert section in text
    fms = re.search(r'<section id="fms">.*?</section>', text, re.S).group(0)
    for name in ("hed-stain", "gabor-texture", "mean-hed-stain"):  # each FM with its licence and access
        assert re.search(
            rf"<td>{name}</td><td>[^<]+</td><td>\d+</td><td>Apache-2.0</td><td>open</td>", fms
        ), name


def test_report_reads_intervals_seeds_and_comparisons(run, tmp_path):
    """The metrics.json of a multi-seed run (ci95, folds a list per seed, comparisons) renders too."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    auroc = metrics["methods"]["fusecpath"]["auroc"]
    auroc["ci95"] = [0.6125, 0.9375]
    auroc["folds"] = [auroc["folds"], auroc["folds"]]  # two seeds
    metrics["comparisons"] = [
        {"a": "fusecpath", "b": "abmil-concat", "metric": "auroc", "diff": 0.0421, "ci95": [-0.01, 0.09]}
    ]
    (copy / "metrics.json").write_text(json.dumps(metrics))
    text = write_run_report(copy).read_text()
    assert "[0.613, 0.938]" in text  # shown rounded
    assert 'data-low="0.6125"' in text and "ci95 from metrics.json" in text
    assert "<h2>Comparisons</h2>" in text and "0.042" in text
    assert interval({"folds": [0.5, 0.7]})[2] == "95 % t-interval over 2 folds"
    # 12.706 * 0.1414 / sqrt(2) = 1.27 either side of 0.6: clipped to AUROC's [0, 1]
    assert interval({"folds": [0.5, 0.7]}, "auroc")[:2] == (0.0, 1.0)
    assert interval({"folds": [0.5, 0.7]})[:2] == pytest.approx((0.6 - 1.2706, 0.6 + 1.2706), abs=1e-3)
    assert interval({"folds": [0.5]}) is None


def test_report_in_chromium(run, tmp_path):
    png = browser.screenshot(run / "report.html", tmp_path / "report.png", (1280, 2200))
    seen = browser.not_blank(png)
    assert seen["inked"] > 0.05 and seen["colours"] > 200, seen
    dom = browser.cells(browser.dump_dom(run / "report.html", tmp_path / "profile"))
    metrics = json.loads((run / "metrics.json").read_text())
    shown = {(a["data-method"], a["data-metric"]): (a, text) for a, text in dom.cells if "data-metric" in a}
    expected = {(m, k): v for m, values in metrics["methods"].items() for k, v in values.items()}
    assert set(shown) == set(expected)
    for key, summary in expected.items():
        attrs, text = shown[key]
        assert float(attrs["data-mean"]) == pytest.approx(summary["mean"], nan_ok=True, abs=0)
        assert text.startswith(f"{fmt(summary['mean'])} ± {fmt(summary['std'])}"), (key, text)
    assert len(dom.images) >= 1 and all(src.startswith("data:image/png") for src in dom.images)
