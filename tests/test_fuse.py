"""``fuse`` end to end on a small feature store written here: metrics.json, predictions, plot, the
checkpoint (reloaded and used by ``predict_slide``), cached clusters, the CLI, and labels checked first."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from fusecpath.api import fm_records
from fusecpath.features.store import feature_path, open_features
from fusecpath.fusion import FusedModel, FuseOptions, fuse, predict_slide
from fusecpath.fusion.cohort import cluster_key
from fusecpath.fusion.fuse import BEST, GUARD, baseline_names, guard_jobs
from fusecpath.report.table import guard_picks
from fusecpath.synthetic.features import write_feature_store
from fusecpath.training.labels import LabelsError
from fusecpath.training.loop import TrainConfig

FMS = ["hed-stain", "gabor-texture", "mean-hed-stain"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """12 slides of hed-stain + gabor-texture features (positives carry a cue in each) and labels.csv."""
    root = tmp_path_factory.mktemp("cohort")
    write_feature_store(root / "features")
    return root


def _options(**kw):
    return FuseOptions(
        folds=3,
        n_clusters=4,
        per_cluster=3,
        n_bags=3,
        arch={"hidden": 16, "n_heads": 2},
        train=TrainConfig(epochs=2, optimizer="adamw", lr=1e-3, batch_size=8),
        progress=False,
        **{"models": ("abmil",), **kw},
    )


def test_fuse_writes_every_report_file_and_a_loadable_model(cohort, tmp_path):
    run = tmp_path / "run"
    result = fuse(
        FMS, cohort / "labels.csv", "classification", run, features=cohort / "features", options=_options()
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "classification" and metrics["folds"] == 3
    names = set(metrics["methods"])
    assert {
        "fusecpath",
        "fusecpath-no-distill",
        "abmil-concat",
        "meanpool-concat",
        "linear-mean-hed-stain",
    } <= names
    assert any("hed-stain" in n and n.startswith("abmil") for n in names)
    assert any("gabor-texture" in n for n in names)
    auroc = metrics["methods"]["fusecpath"]["auroc"]
    assert len(auroc["folds"]) == 3 and auroc["mean"] == pytest.approx(np.mean(auroc["folds"]))
    with open(run / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 * len(names) and {"prob_neg", "prob_pos", "fold", "patient_id"} <= set(rows[0])
    assert (run / "roc.png").stat().st_size > 1000
    # Clusters were cached in the run folder under a key of the FMs' fingerprints, K and seed; the
    # feature files were only read.
    key = cluster_key(fm_records(["hed-stain", "gabor-texture"]), 4, 0)
    assert len(list((run / "cache" / "clusters" / key).glob("*.npy"))) == 12
    stored = open_features(feature_path(cohort / "features", "TCGA-AA-0000-01Z")).datasets()
    assert not [name for name in stored if name.startswith("clusters")]
    # The final model reloads from its checkpoint folder and predicts a slide with per-patch attention.
    model = FusedModel.from_pretrained(result.checkpoint)
    config = json.loads((result.checkpoint / "config.json").read_text())
    assert [fm["name"] for fm in config["patch_fms"]] == ["hed-stain", "gabor-texture"]
    assert config["slide_fms"][0]["plugin"] == "fusecpath" and config["slide_fms"][0]["fingerprint"]
    feats = open_features(feature_path(cohort / "features", "TCGA-AA-0001-01Z"))
    pred = predict_slide(model, {fm: feats.patch(fm) for fm in ("hed-stain", "gabor-texture")}, feats.coords)
    assert pred.output.shape == (2,) and pred.output.sum() == pytest.approx(1.0, abs=1e-5)
    assert pred.attention.shape == (48,) and np.nanmin(pred.attention) >= 0


def test_seeds_give_intervals_every_fold_score_and_paired_comparisons(cohort, tmp_path):
    """Two seeds x 3 folds: every metric carries mean, std, ci95 and the 6 fold scores; every other
    method is compared with fusecpath per metric; the progress callback counts every epoch of the run."""
    seen: list[tuple[int, int]] = []
    options = _options(seeds=[0, 1], models=("r2tmil",), final_fit=False)
    options.train.epochs = 1
    options.on_progress = lambda done, total, what: seen.append((done, total))
    result = fuse(
        FMS,
        cohort / "labels.csv",
        "classification",
        tmp_path / "run",
        features=cohort / "features",
        options=options,
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["seeds"] == [0, 1] and metrics["test_train_ratio"] == pytest.approx(0.5, abs=0.1)
    for values in metrics["methods"].values():
        for v in values.values():
            assert len(v["folds"]) == 6 and len(v["ci95"]) == 2
            finite = [x for x in v["folds"] if np.isfinite(x)]
            assert v["mean"] == pytest.approx(np.mean(finite))
            assert v["ci95"][0] <= v["mean"] <= v["ci95"][1]
    assert set(metrics["comparisons"]) == set(metrics["methods"]) - {"fusecpath"}
    assert {"r2tmil-hed-stain", "r2tmil-concat", "fusecpath-random-bags"} <= set(metrics["comparisons"])
    diff = metrics["comparisons"]["r2tmil-concat"]["auroc"]
    ours, theirs = (np.array(metrics["methods"][m]["auroc"]["folds"]) for m in ("fusecpath", "r2tmil-concat"))
    assert diff["difference"] == pytest.approx(np.nanmean(ours - theirs))
    assert isinstance(diff["excludes_zero"], bool)
    # the two seeds used different folds; predictions.csv has one row per seed, slide and method
    folds = json.loads((tmp_path / "run" / "folds.json").read_text())
    assert {f["seed"] for f in folds} == {0, 1}
    assert len(result.predictions.read_text().splitlines()) == 1 + 2 * 12 * len(metrics["methods"])
    trained = set(metrics["methods"]) - {GUARD, BEST}  # the guards pick among trained jobs: no epochs
    assert seen[-1][0] == seen[-1][1] == 2 * 3 * len(trained)
    # each guard: every (seed, fold) took fusecpath or one of its candidates, and its scores are that job's
    guards = metrics["guards"]
    assert guards[GUARD]["candidates"] == ["fusecpath", "r2tmil-hed-stain", "r2tmil-gabor-texture"]
    assert guards[BEST]["candidates"] == [
        "fusecpath",
        "r2tmil-hed-stain",
        "r2tmil-gabor-texture",
        "r2tmil-concat",
        "meanpool-concat",
        "linear-mean-hed-stain",  # a slide FM's linear probe is a baseline too
    ]
    for name, guard in guards.items():
        assert [(c["seed"], c["fold"]) for c in guard["chosen"]] == [(s, f) for s in (0, 1) for f in range(3)]
        for i, c in enumerate(guard["chosen"]):
            assert c["method"] in guard["candidates"]
            assert set(c["validation"]) == set(guard["candidates"])
            chosen_score = metrics["methods"][c["method"]]["auroc"]["folds"][i]
            assert metrics["methods"][name]["auroc"]["folds"][i] == pytest.approx(chosen_score, nan_ok=True)
        kept = sum(c["method"] == "fusecpath" for c in guard["chosen"])
        assert guard_picks(guard).startswith(f"fusecpath in {kept} of 6 folds")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["options"]["seeds"] == [0, 1] and run["options"]["preset"] == "custom"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "survivall"}, "--task must be one of"),
        ({"fms": ["no-such-fm"]}, "no-such-fm"),
        ({"seeds": []}, "--seeds must be"),
        ({"seeds": [0, 0]}, "repeats a seed"),
        ({"folds": 1}, "--folds must be at least 2"),
        ({"models": ("abmil", "gnn")}, "unknown baseline 'gnn'"),
        ({"labels": "missing.csv"}, "no such labels file"),
    ],
)
def test_fuse_checks_its_inputs_before_any_work(cohort, tmp_path, change, message):
    from fusecpath.errors import FusecpathError

    args = {"fms": FMS, "labels": cohort / "labels.csv", "task": "classification"}
    args.update({k: v for k, v in change.items() if k in args})
    if "labels" in change:
        args["labels"] = tmp_path / change["labels"]
    options = replace(_options(), **{k: v for k, v in change.items() if k not in args and k != "labels"})
    with pytest.raises(FusecpathError, match=message):
        fuse(
            args["fms"],
            args["labels"],
            args["task"],
            tmp_path / "run",
            features=cohort / "features",
            options=options,
        )
    assert not (tmp_path / "run").exists()


def test_presets_default_by_device_and_flags_override():
    from fusecpath.fusion.fuse import default_preset

    assert default_preset("cuda:0") == "paper" and default_preset("cpu") == "fast"
    paper = FuseOptions.from_preset("paper")
    assert (paper.n_clusters, paper.per_cluster, paper.train.optimizer, paper.train.epochs) == (
        50,
        10,
        "sgd",
        30,
    )
    fast = FuseOptions.from_preset("fast", n_bags=3, train={"epochs": 2})
    assert (
        fast.preset == "fast"
        and fast.n_bags == 3
        and fast.train.epochs == 2
        and fast.train.optimizer == "adamw"
    )


def test_regression_and_survival_run(cohort, tmp_path):
    labels = tmp_path / "reg.csv"
    ids = [f"TCGA-AA-{i:04d}-01Z" for i in range(12)]
    labels.write_text(
        "slide_id,g1,g2\n" + "".join(f"{s},{i % 2 + 0.1 * i},{-i}\n" for i, s in enumerate(ids))
    )
    reg = fuse(
        FMS,
        labels,
        "regression",
        tmp_path / "reg",
        features=cohort / "features",
        options=_options(baselines=False, final_fit=False),
    )
    assert set(reg.metrics["methods"]["fusecpath"]) == {"mse", "pearson"}
    surv = tmp_path / "surv.csv"
    surv.write_text("slide_id,time,event\n" + "".join(f"{s},{10 + i},{i % 2}\n" for i, s in enumerate(ids)))
    result = fuse(
        FMS,
        surv,
        "survival",
        tmp_path / "surv",
        features=cohort / "features",
        options=_options(baselines=False),
    )
    assert 0.0 <= result.metrics["methods"]["fusecpath"]["c_index"]["mean"] <= 1.0
    assert (tmp_path / "surv" / "km.png").is_file()
    model = FusedModel.from_pretrained(result.checkpoint)
    assert model.config["task"]["kind"] == "survival"


def test_labels_are_checked_before_training(cohort, tmp_path):
    bad = tmp_path / "labels.csv"
    bad.write_text((cohort / "labels.csv").read_text() + "TCGA-ZZ-9999-01Z,pos\n")
    with pytest.raises(LabelsError, match="1 slides have no features"):
        fuse(FMS, bad, "classification", tmp_path / "run", features=cohort / "features", options=_options())
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_cli_fuse_json(cohort, tmp_path, capsys):
    from fusecpath.cli import main

    torch.manual_seed(0)
    with pytest.raises(SystemExit) as ok:
        main(
            [
                "fuse",
                "--fms",
                "hed-stain,gabor-texture",
                "--features",
                str(cohort / "features"),
                "--labels",
                str(cohort / "labels.csv"),
                "--task",
                "classification",
                "--out",
                str(tmp_path / "run"),
                "--folds",
                "3",
                "--epochs",
                "1",
                "--clusters",
                "4",
                "--per-cluster",
                "2",
                "--bags",
                "2",
                "--hidden",
                "16",
                "--layer-scale",
                "0.01",
                "--no-baselines",
                "--json",
            ]
        )
    assert not ok.value.code
    data = json.loads(capsys.readouterr().out)
    assert list(data["methods"]) == ["fusecpath"] and data["folds"] == 3
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert saved["arch"]["layer_scale"] == 0.01 and saved["arch"]["hidden"] == 16
    with pytest.raises(SystemExit) as info:
        main(
            [
                "fuse",
                "--fms",
                "mean-hed-stain",
                "--features",
                str(cohort / "features"),
                "--labels",
                str(cohort / "labels.csv"),
                "--task",
                "classification",
                "--out",
                str(tmp_path / "run2"),
            ]
        )
    assert info.value.code == 1
    assert "names no patch FM" in capsys.readouterr().err


def test_the_guard_takes_the_better_validation_score_and_keeps_fusecpath_on_a_tie():
    def job(method, fold, val):
        return {"seed": 0, "fold": fold, "method": method, "val": val, "scores": {"auroc": fold}}

    done = [
        job("fusecpath", 0, (0.7, -0.6)),
        job("abmil-uni", 0, (0.9, -0.5)),  # better metric: chosen
        job("abmil-concat", 0, (1.0, -0.1)),  # not a candidate
        job("fusecpath", 1, (0.8, -0.5)),
        job("abmil-uni", 1, (0.8, -0.5)),  # a tie: fusecpath stays
        job("fusecpath", 2, (0.8, -0.7)),
        job("abmil-uni", 2, (0.8, -0.4)),  # same metric, lower loss: chosen
    ]
    chosen = [(j["fold"], j["chosen"], j["method"]) for j in guard_jobs(done, ["abmil-uni"])]
    assert chosen == [(0, "abmil-uni", GUARD), (1, "fusecpath", GUARD), (2, "abmil-uni", GUARD)]
    best = [j["chosen"] for j in guard_jobs(done, ["abmil-uni", "abmil-concat"], BEST)]
    assert best == ["abmil-concat", "fusecpath", "abmil-uni"]
    first = guard_jobs(done, ["abmil-uni"])[0]["validation"]  # every candidate's score is kept, loss positive
    assert first == {"fusecpath": {"metric": 0.7, "loss": 0.6}, "abmil-uni": {"metric": 0.9, "loss": 0.5}}


def test_the_best_guard_takes_every_baseline_but_not_fusecpath_or_its_ablations():
    names = ["fusecpath", "fusecpath-random-bags", "fusecpath-no-distill", "abmil-uni", "abmil-concat"]
    assert baseline_names([*names, "meanpool-concat", "linear-titan"]) == [
        "abmil-uni",
        "abmil-concat",
        "meanpool-concat",
        "linear-titan",
    ]


def test_guard_picks_counts_the_kept_folds_and_names_the_others_most_often_first():
    picks = ["abmil-uni", "fusecpath", "meanpool-concat", "abmil-uni"]
    guard = {"chosen": [{"seed": 0, "fold": f, "method": m} for f, m in enumerate(picks)]}
    assert guard_picks(guard) == "fusecpath in 1 of 4 folds; abmil-uni 2, meanpool-concat 1"
    assert guard_picks({"chosen": guard["chosen"][1:2]}) == "fusecpath in 1 of 1 folds"
