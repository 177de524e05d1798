"""How hard is each synthetic feature cohort? Simple strong baselines on every design.

For each design of ``fusecpath.synthetic.features`` (complementary, redundant, teacher), one cohort
(``--slides`` slides, uni + conch-v1.5 + virchow2 at their real widths) is simulated in
memory (the same features ``make_feature_cohort`` writes) and scored with logistic regression
(standardised inputs, L2, C = ``--C``) on mean-pooled and on [mean, max]-pooled patch features of
each FM and of their concatenation, and on each slide FM's embedding: out-of-fold AUROC over 5
patient-grouped stratified folds, repeated with fold seeds 0, 1, 2 on cohort 0 (the cohort
``make_feature_cohort`` writes by default), and on cohorts 0, 1, 2 (mean ± std over the seeds). The
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
    """Slide-level inputs: ``<fm> mean``, ``<fm> mean+max``, ``concat ...``, ``slide FM <fm>``, and for
    the teacher design the mean of each slide's tumour patches (picked with the generator's states:
    what a perfect attention could pool)."""
    out: dict[str, list[np.ndarray]] = {}
    for s in cohort.slides:
        means = {fm: x.mean(0) for fm, x in s.patch.items()}
        maxes = {fm: x.max(0) for fm, x in s.patch.items()}
        for fm in s.patch:
            out.setdefault(f"{fm} mean", []).append(means[fm])
            out.setdefault(f"{fm} mean+max", []).append(np.concatenate([means[fm], maxes[fm]]))
        out.setdefault("concat mean", []).append(np.concatenate(list(means.values())))
        out.setdefault("concat mean+max", []).append(np.concatenate([*means.values(), *maxes.values()]))
        if cohort.design == "teacher":
            tumour = s.states == 0 if (s.states == 0).any() else np.ones(len(s.states), bool)
            pooled = [x[tumour].mean(0) for x in s.patch.values()]
            out.setdefault("concat mean of tumour patches (true states)", []).append(np.concatenate(pooled))
        for fm, x in s.slide.items():
            out.setdefault(f"slide FM {fm} (simulated)", []).append(x)
    return {name: np.asarray(rows) for name, rows in out.items()}


def truth_score(cohort: SimCohort) -> np.ndarray:
    key = {
        "complementary": "contrast",
        "subtypes": "lesion_fraction",
        "redundant": "lesion_fraction",
        "teacher": "g",
    }[cohort.design]
    return np.array([s.truth[key] for s in cohort.slides], dtype=float)


def score(cohort: SimCohort, fold_seeds: list[int], c: float) -> dict[str, tuple[int, list[float]]]:
    """Input name -> (width, AUROC of each fold seed); the generator's latent first."""
    y = np.array([s.label == "pos" for s in cohort.slides], dtype=int)
    groups = [s.slide_id[:12] for s in cohort.slides]
    out = {
        "truth (generator's latent)": (1, [float(roc_auc_score(y, truth_score(cohort)))] * len(fold_seeds))
    }
    for name, x in inputs(cohort).items():
        out[name] = (x.shape[1], [oof_auroc(x, y, groups, seed, c) for seed in fold_seeds])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slides", type=int, default=100)
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--seeds", default="0,1,2", help="fold seeds on cohort 0, and cohort seeds")
    parser.add_argument("--C", type=float, default=0.05, help="inverse L2 strength of the regressions")
    parser.add_argument("--write", action="store_true", help="save benchmarks/results/cohorts.json")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    sections = []
    for design in args.designs.split(","):
        start = time.perf_counter()
        cohorts = {seed: simulate_cohort(design, n_slides=args.slides, seed=seed, fms=FMS) for seed in seeds}
        first = cohorts[seeds[0]]
        on_first = score(first, seeds, args.C)
        across = {seed: score(cohorts[seed], [seed], args.C) for seed in seeds}
        y = np.array([s.label == "pos" for s in first.slides], dtype=int)
        patients = len({s.slide_id[:12] for s in first.slides})
        print(
            f"\n{design}: {len(y)} slides, {patients} patients, {y.mean():.2f} positive (cohort {seeds[0]})"
        )
        print(
            f"  {'input':46s} {'dim':>6s}  {'cohort ' + str(seeds[0]) + ', fold seeds':>20s}  {'cohorts':>14s}"
        )
        rows = []
        for name, (dim, aucs) in on_first.items():
            other = [across[seed][name][1][0] for seed in seeds]
            cells = [np.mean(aucs), np.std(aucs), np.mean(other), np.std(other)]
            rows.append([name, str(dim), *(round(float(v), 3) for v in cells)])
            print(
                f"  {name:46s} {dim:>6d}  {cells[0]:.3f} ± {cells[1]:.3f}       {cells[2]:.3f} ± {cells[3]:.3f}"
            )
        print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
        sections.append(
            {
                "heading": design,
                "text": f"{first.truth['promise']}. Cohort {seeds[0]}: {len(y)} slides, {patients} patients, "
                f"{y.mean():.0%} positive. Logistic regression (C = {args.C}) on standardised inputs, out-of-fold "
                f"AUROC over 5 patient-grouped folds: on cohort {seeds[0]} with fold seeds {args.seeds}, and "
                f"on cohorts {args.seeds} (each with its own fold seed); mean ± std over the seeds.",
                "columns": ["input", "dim", "AUROC cohort 0", "std", "AUROC over cohorts", "std"],
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
