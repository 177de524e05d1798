"""Criterion 5 of issue 11, "fusion does no harm", on feature-level cohorts in TRIDENT layout.

    python benchmarks/fusion_evidence.py [--fms uni,conch-v1.5,virchow2] [--slides 100] [--seeds 0]
                                         [--cohort-seed 0] [--models r2tmil,abmil] [--epochs N] [--bags N] [--write]

For the ``redundant`` design (the first FM carries the signal, the others are weaker) FuseCPath must not
fall more than 0.05 AUROC below the best single-FM model; where the FMs are complementary it must beat
every single-FM model (paired interval above 0) and stay within 0.05 of the best concatenation
baseline. Two complementary designs, each FM blind to a different marker: ``complementary`` (the label
is a contrast of the markers' fractions, which mean pooling reads directly) and ``subtypes`` (the label
is the presence of a small lesion of any subtype, which mean pooling dilutes). Each cohort is written
by fusecpath.synthetic.features at the FMs' real widths, read by ``fuse --features <TRIDENT job
folder>``, and its files are checked byte-identical (SHA-256) after the run. Training is the fast preset's (the CPU default) unless ``--epochs`` / ``--bags``
say otherwise. The paper's projection and pooling (``fusion.model.PAPER_POOLING``: Linear-ReLU
input projection, R²T's LayerNorm on the tokens, every cluster slot of a bag counting alike) is trained on the same folds and reported beside it as
``fusecpath-paper-pooling``, with its paired difference to the default. The guards ``fusecpath-or-single``
(per fold, FuseCPath or a single-FM model, whichever the inner validation split scores higher; no
training of its own) and ``fusecpath-or-best`` (the same rule over every trained baseline: model
selection, not fusion) get their own verdicts under the same rules. ``--cohort-seed`` draws another
cohort of the same design, so a rule fixed after seeing one cohort can be measured on a fresh one.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import torch

from fusecpath.fusion.fuse import BEST, GUARD
from fusecpath.fusion.model import PAPER_POOLING

MARGIN = 0.05
PAPER_VARIANT = ("fusecpath-paper-pooling", PAPER_POOLING)


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def verdict(design: str, metrics: dict, who: str = "fusecpath") -> tuple[bool, str, dict]:
    """Whether ``who`` (FuseCPath, or one of its guards) meets criterion 5 on ``design``,
    the reason, and the figures it rests on; paired intervals over the matched (seed, fold) scores."""
    from fusecpath.training.stats import paired_difference

    methods = metrics["methods"]
    auroc = {name: values["auroc"]["mean"] for name, values in methods.items()}
    fused = auroc[who]
    single = {
        n: a
        for n, a in auroc.items()
        if not n.startswith("fusecpath") and not n.endswith("concat") and not n.startswith("linear-")
    }
    concat = {n: a for n, a in auroc.items() if n.endswith("-concat")}
    best_single = max(single, key=single.get)
    best_concat = max(concat, key=concat.get)
    figures = {
        "fused": fused,
        "best_single": [best_single, single[best_single]],
        "best_concat": [best_concat, concat[best_concat]],
    }
    if design == "redundant":
        ok = fused >= single[best_single] - MARGIN
        return (
            ok,
            f"{who} {fused:.3f} vs best single {best_single} {single[best_single]:.3f} (may fall {MARGIN} below)",
            figures,
        )
    ours = methods[who]["auroc"]["folds"]
    ratio = metrics["test_train_ratio"]
    beaten = [n for n in single if paired_difference(ours, methods[n]["auroc"]["folds"], ratio).lo > 0]
    ok = len(beaten) == len(single) and fused >= concat[best_concat] - MARGIN
    return (
        ok,
        f"{who} {fused:.3f} beats {len(beaten)}/{len(single)} single-FM models with interval > 0; "
        f"best concat {best_concat} {concat[best_concat]:.3f} (must be within {MARGIN})",
        figures,
    )


def add_variant(metrics: dict, name: str, variant: dict) -> None:
    """Add a fusecpath variant's run (same folds and seeds) to ``metrics`` as method ``name``, with
    its paired difference fusecpath − variant."""
    from fusecpath.fusion.fuse import compare

    ours = variant["methods"]["fusecpath"]
    metrics["methods"][name] = ours
    per_fold = {
        "fusecpath": {k: v["folds"] for k, v in metrics["methods"]["fusecpath"].items()},
        name: {k: v["folds"] for k, v in ours.items()},
    }
    metrics["comparisons"][name] = compare(per_fold, metrics["test_train_ratio"])[name]


def run_design(design: str, args: argparse.Namespace, root: Path) -> tuple[list, list, str]:
    """Write ``design``'s cohort, fuse it (and the paper's pooling on the same folds); returns its
    verdict row, its per-method rows and the text printed for it."""
    torch.set_num_threads(1)  # small models: one thread is as fast and never oversubscribes a shared CPU
    from fusecpath.fusion.fuse import FuseOptions, fuse
    from fusecpath.report.table import guard_picks
    from fusecpath.synthetic.features import make_feature_cohort

    fms = tuple(args.fms.split(","))
    labels = make_feature_cohort(
        root / design, design, args.slides, seed=args.cohort_seed, layout="trident", fms=fms
    )
    job = next(p for p in (root / design).iterdir() if p.is_dir() and "px_" in p.name)
    before = _digests(job)
    overrides = {"n_bags": args.bags} if args.bags else {}
    options = FuseOptions.from_preset(
        "fast",
        seeds=[int(s) for s in args.seeds.split(",")],
        models=tuple(args.models.split(",")),
        train={"epochs": args.epochs} if args.epochs else {},
        final_fit=False,
        progress=False,
        **overrides,
    )
    start = time.perf_counter()
    result = fuse(list(fms), labels, "classification", root / design / "run", features=job, options=options)
    name, arch = PAPER_VARIANT
    paper = fuse(
        list(fms),
        labels,
        "classification",
        root / design / "run-paper",
        features=job,
        options=replace(options, baselines=False, arch={**options.arch, **arch}),
    )
    wall = time.perf_counter() - start
    add_variant(result.metrics, name, paper.metrics)
    identical = _digests(job) == before
    ok, reason, _ = verdict(design, result.metrics)
    lines = [
        f"{design}: {'PASS' if ok else 'FAIL'}: {reason}; TRIDENT files byte-identical: {identical} ({wall:.0f} s)"
    ]
    rows = [[design, "fusecpath", "pass" if ok else "fail", reason, identical, round(wall)]]
    for guard in (GUARD, BEST):
        guard_ok, guard_reason, _ = verdict(design, result.metrics, guard)
        figures = f"{guard_reason}; {guard_picks(result.metrics['guards'][guard])}"
        lines.append(f"{design} {guard}: {'PASS' if guard_ok else 'FAIL'}: {figures}")
        rows.append([design, guard, "pass" if guard_ok else "fail", figures, identical, round(wall)])
    detail = []
    for method, values in result.metrics["methods"].items():
        a = values["auroc"]
        diff = result.metrics["comparisons"].get(method, {}).get("auroc")
        cell = (
            ""
            if diff is None
            else f"{diff['difference']:+.3f} [{diff['ci95'][0]:+.3f}, {diff['ci95'][1]:+.3f}]"
        )
        detail.append(
            [design, method, round(a["mean"], 3), f"[{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}]", cell]
        )
        lines.append(f"  {method:26s} {a['mean']:.3f} [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}]  {cell}")
    return rows, detail, "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fms", default="uni,conch-v1.5,virchow2")
    parser.add_argument("--slides", type=int, default=100)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--cohort-seed", type=int, default=0, help="which draw of each design's cohort")
    parser.add_argument("--models", default="r2tmil,abmil")
    parser.add_argument("--epochs", type=int, default=None, help="default: the fast preset's")
    parser.add_argument("--bags", type=int, default=None, help="default: the fast preset's")
    parser.add_argument("--designs", default="redundant,complementary,subtypes")
    parser.add_argument(
        "--jobs", type=int, default=1, help="designs run at once, one process (and thread) each"
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--write", action="store_true", help="save benchmarks/results/fusion_evidence.json")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="fusecpath-evidence-"))
    designs = args.designs.split(",")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(run_design, designs, [args] * len(designs), [root] * len(designs)))
    rows, detail = [], []
    for verdicts, lines, text in runs:
        print(text)
        rows += verdicts
        detail += lines
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from _results import write_results

        from fusecpath.fusion.fuse import FuseOptions

        preset = FuseOptions.from_preset("fast")
        epochs, bags = args.epochs or preset.train.epochs, args.bags or preset.n_bags
        text = f"FMs {args.fms}; {args.slides} slides (cohort seed {args.cohort_seed}); seeds {args.seeds}; fast preset, {epochs} epochs, {bags} bags"
        print(
            write_results(
                __file__,
                "Fusion does no harm (issue 11, criterion 5)",
                [
                    {
                        "heading": "Verdicts",
                        "text": text,
                        "columns": [
                            "design",
                            "model",
                            "verdict",
                            "figures",
                            "TRIDENT files unchanged",
                            "seconds",
                        ],
                        "rows": rows,
                    },
                    {
                        "heading": "AUROC by method",
                        "columns": [
                            "design",
                            "method",
                            "AUROC",
                            "95 % interval",
                            "fusecpath − method [95 %]",
                        ],
                        "rows": detail,
                    },
                ],
            )
        )


if __name__ == "__main__":
    main()
