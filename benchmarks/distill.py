"""Distillation that can be seen: FuseCPath with and without its slide-FM teachers, on a cohort whose
simulated slide FM carries what the patch features lack (``make_feature_cohort(design="teacher")``).

Per seed: a fresh cohort (the seed draws the cohort, the folds, the bags and the training), K-fold
cross-validation split by patient, AUROC per fold. Methods on the same folds:

- ``fusecpath``: distillation as the official code (teachers learn through the KL term only);
- ``fusecpath-no-distill``: the same model without teachers;
- ``fusecpath-teacher-ce``: teachers also get the task loss;
- ``fusecpath-cr2t-official``: as ``fusecpath`` with ``--cr2t official`` (the official regions, the grid
  cut so that windows hold 3 x 3 tokens as in the paper's 24 x 24 grid of 500-token bags);
- ``linear-<slide FM>``: a linear probe of the teacher's embedding (what there is to teach).

Prints, per method, the mean AUROC over seeds with a 95% t-interval across seeds, and each method's
paired difference to ``fusecpath-no-distill`` (per seed, then mean and interval). Bags are smaller than
the paper's (``--clusters`` x ``--per-cluster``) to fit a 2-core CPU; ``--write`` ->
benchmarks/results/distill.json.

    python benchmarks/distill.py [--seeds 0,1,2] [--slides 80] [--folds 3] [--epochs 15] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from fusecpath.files import write_atomic
from fusecpath.fusion.cohort import open_ready_cohort
from fusecpath.fusion.fuse import FuseOptions, fused_config, split_fms
from fusecpath.fusion.methods import FuseCPathMethod, LinearMethod, slide_vectors
from fusecpath.synthetic.features import make_feature_cohort
from fusecpath.training.folds import inner_split, kfold, strata
from fusecpath.training.loop import TrainConfig, predict, train
from fusecpath.training.tasks import Task

RESULTS = Path(__file__).parent / "results" / "distill.json"
SLIDE_FM = "titan"
REFERENCE = "fusecpath-no-distill"


def interval(values: list[float]) -> tuple[float, float]:
    """(mean, half-width of the 95% t-interval) of per-seed values."""
    arr = np.asarray(values, dtype=float)
    if len(arr) < 2:
        return float(arr.mean()), float("nan")
    return float(arr.mean()), float(stats.t.ppf(0.975, len(arr) - 1) * arr.std(ddof=1) / np.sqrt(len(arr)))


def methods_for(cohort: dict, config: dict, args: argparse.Namespace, seed: int) -> list:
    bag = dict(n_bags=args.bags, per_cluster=args.per_cluster, seed=seed)
    # the official rule with windows of 3 x 3 tokens (region_num 8 at the paper's 500-token bags)
    side = math.ceil(math.sqrt(args.clusters * args.per_cluster))
    windows = {"cr2t": "official", "pool": "relu", "region_num": math.ceil(side / 3)}
    official = {**config, "arch": {**config["arch"], **windows}}
    return [
        FuseCPathMethod(cohort, config, name="fusecpath", **bag),
        FuseCPathMethod(cohort, {**config, "slide_fms": []}, name=REFERENCE, **bag),
        FuseCPathMethod(cohort, config, teacher_ce=True, name="fusecpath-teacher-ce", **bag),
        FuseCPathMethod(cohort, official, name="fusecpath-cr2t-official", **bag),
        LinearMethod(slide_vectors(cohort, SLIDE_FM), name=f"linear-{SLIDE_FM}"),
    ]


def run_seed(seed: int, args: argparse.Namespace, root: Path) -> dict[str, list[float]]:
    """AUROC per fold of every method on the seed's cohort."""
    labels_csv = make_feature_cohort(
        root / f"seed{seed}", "teacher", n_slides=args.slides, seed=seed, layout="store",
        fms=tuple(args.fms), slide_fms=(SLIDE_FM,), patches=(60, 120),
    )  # fmt: skip
    store = labels_csv.parent / "features"
    patch_fms, slide_fms = split_fms([*args.fms, SLIDE_FM])
    ready = open_ready_cohort(
        store, labels_csv, "classification", patch_fms, slide_fms, args.folds, args.clusters, seed,
        root / f"seed{seed}" / "run",
    )  # fmt: skip
    lab, cohort = ready.labels, ready.slides
    options = FuseOptions(
        seeds=[seed], n_clusters=args.clusters, per_cluster=args.per_cluster, n_bags=args.bags,
        arch={"hidden": args.hidden, "n_heads": 4, "attn_dim": 32},
    )  # fmt: skip
    methods = methods_for(cohort, fused_config(patch_fms, slide_fms, options), args, seed)
    task = Task("classification", classes=lab.classes)
    strat, ids = strata("classification", lab.y), np.array(lab.slide_ids)
    scores: dict[str, list[float]] = {m.name: [] for m in methods}
    for f, (train_idx, test_idx) in enumerate(kfold(strat, lab.patients, args.folds, seed)):
        fit, val = inner_split(strat[train_idx], lab.patients[train_idx], seed + f, 0.2)
        fit, val = train_idx[fit], train_idx[val]
        cfg = TrainConfig(epochs=args.epochs, optimizer="adamw", lr=1e-3, batch_size=32, seed=seed + f)
        for method in methods:
            model, _ = train(method, task, list(ids[fit]), lab.y[fit], list(ids[val]), lab.y[val], cfg)
            pred = predict(method, model, task, list(ids[test_idx]), "cpu")
            scores[method.name].append(task.evaluate(lab.y[test_idx], pred)["auroc"])
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--fms", default="uni,conch-v1.5", help="patch FMs (simulated at their widths)")
    parser.add_argument("--slides", type=int, default=80)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--clusters", type=int, default=16)
    parser.add_argument("--per-cluster", type=int, default=10)
    parser.add_argument("--bags", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--write", action="store_true", help="write benchmarks/results/distill.json")
    args = parser.parse_args(argv)
    args.fms = [fm for fm in args.fms.split(",") if fm]
    torch.set_num_threads(1)  # tiny models: more threads only contend
    seeds = [int(s) for s in args.seeds.split(",") if s]
    per_seed: dict[str, list[float]] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            scores = run_seed(seed, args, Path(tmp))
            for name, folds in scores.items():
                per_seed.setdefault(name, []).append(float(np.mean(folds)))
            shown = ", ".join(f"{n} {np.mean(v):.3f}" for n, v in scores.items())
            print(f"seed {seed}: {shown} ({time.perf_counter() - start:.0f} s)", flush=True)
    columns = ["method", "AUROC (mean over seeds)", "95% CI ±", f"minus {REFERENCE}", "95% CI ±", "per seed"]
    rows = []
    for name, values in per_seed.items():
        mean, half = interval(values)
        diff = [a - b for a, b in zip(values, per_seed[REFERENCE], strict=True)]
        dmean, dhalf = interval(diff) if name != REFERENCE else (0.0, 0.0)
        rows.append([name, round(mean, 3), round(half, 3), round(dmean, 3), round(dhalf, 3),
                     " ".join(f"{v:.3f}" for v in values)])  # fmt: skip
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(map(str, row)))
    if args.write:
        command = "python benchmarks/distill.py " + shlex.join(argv if argv is not None else sys.argv[1:])
        text = (
            f"teacher design, {args.slides} slides a seed, {args.folds}-fold CV by patient, seeds "
            f"{args.seeds}; patch FMs {', '.join(args.fms)} (simulated), teacher {SLIDE_FM} (simulated); "
            f"bags of {args.clusters} clusters x {args.per_cluster}, {args.bags} a slide, hidden "
            f"{args.hidden}, {args.epochs} epochs AdamW 1e-3. Intervals: 95% t over seeds."
        )
        report = {
            "title": "Distillation: FuseCPath with vs without slide-FM teachers",
            "command": command.strip(),
            "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            "sections": [{"heading": "AUROC by method", "text": text, "columns": columns, "rows": rows}],
        }
        write_atomic(RESULTS, json.dumps(report, indent=1) + "\n")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
