"""Fused checkpoint round trip and heatmap check on the synthetic cohort.

fuse (hed-stain + gabor-texture) on a synthetic training cohort -> push to a local Hub-compatible server
(tests/hubserver.py, the real huggingface_hub client) -> pull into a fresh cache -> predict held-out slides
offline, and compare with the local model's predictions. Then, on the held-out positive slides: the
fraction of the top-attention tissue patches that lie in the generator's planted joint region (what
makes a slide positive), against the fraction of tissue it covers.

    .venv/bin/python benchmarks/hub_roundtrip.py [--train 32] [--held 8] [--out /tmp/fusecpath-hub-bench]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=32)
    parser.add_argument("--held", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--top", type=float, default=0.1, help="fraction of tissue patches called top-attention"
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/fusecpath-hub-bench"))
    args = parser.parse_args()

    import torch
    from hubserver import Cli, HubServer, leaks

    from fusecpath.features.store import feature_path, open_features
    from fusecpath.fusion import FuseOptions, fuse
    from fusecpath.synthetic.slides import GLASS, JOINT_CUE, make_cohort, patch_truth
    from fusecpath.training.loop import TrainConfig

    torch.set_num_threads(1)
    shutil.rmtree(args.out, ignore_errors=True)
    t0 = time.perf_counter()
    labels = make_cohort(args.out / "train", args.train, seed=11, workers=1)
    make_cohort(args.out / "held", args.held, seed=1234, workers=1)
    print(f"cohorts: {args.train} training + {args.held} held-out slides ({time.perf_counter() - t0:.0f} s)")
    t0 = time.perf_counter()
    options = FuseOptions(
        folds=3,
        n_clusters=10,
        per_cluster=4,
        n_bags=16,
        baselines=False,
        val_fraction=0.25,
        arch={"hidden": 64, "n_heads": 4, "attn_dim": 32},
        train=TrainConfig(epochs=args.epochs, optimizer="adamw", lr=1e-3, batch_size=8),
        progress=False,
    )
    run = fuse(
        ["hed-stain", "gabor-texture"],
        labels,
        "classification",
        args.out / "run",
        slides=args.out / "train",
        options=options,
    )
    auroc = run.metrics["methods"]["fusecpath"]["auroc"]
    print(
        f"fuse: cross-validated AUROC {auroc['mean']:.3f} ± {auroc['std']:.3f} ({time.perf_counter() - t0:.0f} s)"
    )

    token = "hf_benchmark_0a1b2c3d4e5f6a7b8c"
    with HubServer(args.out / "server", {token: ("lab", ())}) as hub:
        cli = Cli(hub, args.out, token)
        steps = [
            (
                "predict (local)",
                [
                    "predict",
                    str(args.out / "held"),
                    "--model",
                    str(args.out / "run"),
                    "--out",
                    str(args.out / "local"),
                ],
                {},
            ),
            ("push", ["push", str(args.out / "run"), "--repo", "lab/synthetic-fused"], {}),
            ("pull (fresh cache)", ["pull", "lab/synthetic-fused"], {"home": "fresh"}),
        ]
        for name, command, extra in steps:
            t0 = time.perf_counter()
            done = cli(*command, **extra)
            print(
                f"{name}: exit {done.returncode} ({time.perf_counter() - t0:.1f} s) {done.stdout.strip()[:300]}"
            )
            if done.returncode:
                sys.exit(done.stderr)
    t0 = time.perf_counter()
    done = cli(
        "predict",
        str(args.out / "held"),
        "--model",
        "lab/synthetic-fused",
        "--out",
        str(args.out / "remote"),
        home="fresh",
        token=None,
        HF_HUB_OFFLINE="1",
    )
    print(
        f"predict (pulled, Hub down, HF_HUB_OFFLINE=1): exit {done.returncode} ({time.perf_counter() - t0:.1f} s)"
    )
    if done.returncode:
        sys.exit(done.stderr)

    def rows(name: str) -> list[dict[str, str]]:
        with open(args.out / name / "predictions.csv", newline="") as handle:
            return list(csv.DictReader(handle))

    local, remote = rows("local"), rows("remote")
    probs = np.array([[float(r["prob_1"]) for r in local], [float(r["prob_1"]) for r in remote]])
    same = [(a["slide_id"], a["prediction"], a["prob_1"]) for a in local] == [
        (b["slide_id"], b["prediction"], b["prob_1"]) for b in remote
    ]
    print(
        f"round trip: {len(local)} held-out slides, identical predictions.csv values: {same}, "
        f"max |prob difference| {np.abs(probs[0] - probs[1]).max():.3g}"
    )
    print(f"token found in outputs or files: {leaks(cli, args.out, (token,)) or 'nowhere'}")

    truth = json.loads((args.out / "held" / "ground_truth.json").read_text())["slides"]
    held_labels = {r["slide_id"]: int(truth[r["slide_id"]]["label"]) for r in local}
    from sklearn.metrics import roc_auc_score

    y = [held_labels[r["slide_id"]] for r in local]
    if len(set(y)) == 2:
        print(f"held-out AUROC: {roc_auc_score(y, probs[0]):.3f} on {len(y)} slides")
    print(f"heatmap check (top {args.top:.0%} of tissue patches by attention, positive held-out slides):")
    inside, cover = [], []
    for row in local:
        sid = row["slide_id"]
        if truth[sid]["label"] != 1:
            continue
        feats = open_features(feature_path(args.out / "local" / "features", sid))
        size = float(feats.attrs["patch_size_level0_exact"])
        classes = patch_truth(args.out / "held", sid, feats.coords, size)
        geo = json.loads(Path(row["geojson"]).read_text())
        attention = np.array([f["properties"]["attention"] for f in geo["features"]])
        tissue = classes != GLASS
        cue = classes == JOINT_CUE  # the region that makes a slide positive
        order = np.argsort(-attention[tissue])
        top = order[: max(1, int(round(args.top * tissue.sum())))]
        inside.append(cue[tissue][top].mean())
        cover.append(cue[tissue].mean())
        print(
            f"  {sid}: {inside[-1]:.2f} of top patches in the joint region vs {cover[-1]:.2f} of tissue "
            f"({tissue.sum()} tissue patches)"
        )
    if inside:
        print(
            f"  mean: {np.mean(inside):.2f} in the joint region vs {np.mean(cover):.2f} of tissue "
            f"(enrichment x{np.mean(inside) / max(np.mean(cover), 1e-9):.1f})"
        )


if __name__ == "__main__":
    main()
