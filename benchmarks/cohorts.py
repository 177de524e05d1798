"""How hard is each synthetic feature cohort? Simple strong baselines on every design.

For each design of ``fusecpath.synthetic.features`` (complementary, redundant, teacher), one cohort
(``--slides`` slides, cohort seed 0, uni + conch-v1.5 + virchow2 at their real widths) is simulated in
memory (the same features ``make_feature_cohort`` writes) and scored with logistic regression
(standardised inputs, L2, C = ``--C``) on mean-pooled and on [mean, max]-pooled patch features of
each FM and of their concatenation, and on each slide FM's embedding: out-of-fold AUROC over 5
patient-grouped stratified folds, repeated with fold seeds 0, 1, 2 (mean ± std over the seeds). The
``truth`` row scores the generator's own latent (the contrast, the lesion fraction, g): the ceiling
the labels allow.

    python benchmarks/cohorts.py [--slides 100] [--designs complementary,redundant,teacher] [--write]

On a shared machine, OPENBLAS_NUM_THREADS=1 keeps BLAS threads from fighting (ten times faster here).

``--write`` saves benchmarks/results/cohorts.json (rendered into docs/results.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fusecpath.files import write_atomic
from fusecpath.synthetic.features import DESIGNS, SimCohort, simulate_cohort

RESULTS = Path(__file__).resolve().parent / "results" / "cohorts.json"
FMS = ("uni", "conch-v1.5", "virchow2")


def oof_auroc(x: np.ndarray, y: np.ndarray, groups: list[str], seed: int, c: float) -> float:
    """Out-of-fold AUROC of a logistic regression over 5 patient-grouped stratified folds."""
    scores = np.zeros(len(y))
    for train, test in StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(x, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
        scores[test] = model.fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, scores))


def inputs(cohort: SimCohort) -> dict[str, np.ndarray]:
    """Slide-level inputs: ``<fm> mean``, ``<fm> mean+max``, ``concat ...`` and ``slide FM <fm>``."""
    out: dict[str, list[np.ndarray]] = {}
    for s in cohort.slides:
        means = {fm: x.mean(0) for fm, x in s.patch.items()}
        maxes = {fm: x.max(0) for fm, x in s.patch.items()}
        for fm in s.patch:
            out.setdefault(f"{fm} mean", []).append(means[fm])
            out.setdefault(f"{fm} mean+max", []).append(np.concatenate([means[fm], maxes[fm]]))
        out.setdefault("concat mean", []).append(np.concatenate(list(means.values())))
        out.setdefault("concat mean+max", []).append(np.concatenate([*means.values(), *maxes.values()]))
        for fm, x in s.slide.items():
            out.setdefault(f"slide FM {fm} (simulated)", []).append(x)
    return {name: np.asarray(rows) for name, rows in out.items()}


def truth_score(cohort: SimCohort) -> np.ndarray:
    key = {"complementary": "contrast", "redundant": "lesion_fraction", "teacher": "g"}[cohort.design]
    return np.array([s.truth[key] for s in cohort.slides], dtype=float)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slides", type=int, default=100)
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--seeds", default="0,1,2", help="fold seeds")
    parser.add_argument("--C", type=float, default=0.05, help="inverse L2 strength of the regressions")
    parser.add_argument("--write", action="store_true", help="save benchmarks/results/cohorts.json")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    sections = []
    for design in args.designs.split(","):
        start = time.perf_counter()
        cohort = simulate_cohort(design, n_slides=args.slides, seed=0, fms=FMS)
        y = np.array([s.label == "pos" for s in cohort.slides], dtype=int)
        groups = [s.slide_id[:12] for s in cohort.slides]
        rows = []
        truth = float(roc_auc_score(y, truth_score(cohort)))
        rows.append(["truth (generator's latent)", "1", round(truth, 3), 0.0])
        print(
            f"\n{design}: {len(y)} slides, {len(set(groups))} patients, {y.mean():.2f} positive", flush=True
        )
        print(f"  {'input':42s} {'dim':>6s}  AUROC")
        print(f"  {'truth (generator latent)':42s} {'1':>6s}  {truth:.3f}")
        for name, x in inputs(cohort).items():
            aucs = [oof_auroc(x, y, groups, seed, args.C) for seed in seeds]
            mean, std = float(np.mean(aucs)), float(np.std(aucs))
            rows.append([name, str(x.shape[1]), round(mean, 3), round(std, 3)])
            print(f"  {name:42s} {x.shape[1]:>6d}  {mean:.3f} ± {std:.3f}", flush=True)
        print(f"  ({time.perf_counter() - start:.0f} s)")
        sections.append(
            {
                "heading": design,
                "text": f"{cohort.truth['promise']}. {len(y)} slides, {len(set(groups))} patients, "
                f"{y.mean():.0%} positive; logistic regression (C = {args.C}), 5 patient-grouped folds, "
                f"fold seeds {args.seeds}: AUROC mean ± std over the seeds.",
                "columns": ["input", "dim", "AUROC mean", "AUROC std"],
                "rows": rows,
            }
        )
    if args.write:
        result = {
            "title": "Synthetic feature cohorts: how hard each design is for simple baselines",
            "command": "python benchmarks/cohorts.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "when": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
            "sections": sections,
        }
        write_atomic(RESULTS, json.dumps(result, indent=1) + "\n")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
