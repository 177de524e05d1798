"""``make demo``: fusion evidence on a laptop CPU, with nothing downloaded.

1. a feature-level ``complementary`` cohort (fusecpath.synthetic.features, 100 slides, TRIDENT layout):
   two small patch FMs (``hed-stain``, ``gabor-texture``, 32-d), each blind to the marker the other sees,
   and a simulated slide FM (``mean-hed-stain``) as the distillation teacher. The label is a contrast of
   the two markers' fractions: one FM alone says little, the two together say it;
2. ``fuse`` with the fast preset (small dims): FuseCPath, its ablations (no distillation, random bags),
   R²T-MIL, ABMIL, TransMIL, CLAM and DSMIL on each FM and on the concatenation, mean pooling and the
   linear probe, all on the same 3 patient-level folds, repeated for 3 seeds, and the guards
   ``fusecpath-or-single`` and ``fusecpath-or-best`` (per fold, FuseCPath or a single-FM model, or any
   baseline, by inner validation);
3. the table: every method's AUROC with its 95 % interval (corrected resampled t over seeds x folds)
   and its paired difference from FuseCPath, starred where that interval excludes 0.

What the table shows is whatever the run measured, ties and losses included; every model given both FMs
can do well on this design, so the interesting rows are the single-FM ones and the intervals.
Pixel-level cohorts (``fusecpath synth``) remain the test bed for extraction.
Run it as ``fusecpath demo [--out DIR] [--seeds 0,1,2]`` (``make demo``); the folder defaults to
./demo-output, or FUSECPATH_DEMO_DIR.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("fusecpath.demo")

PATCH_FMS = ("hed-stain", "gabor-texture")
SLIDE_FMS = ("mean-hed-stain",)
N_SLIDES = 100


def demo_options(seeds: list[int]):
    from fusecpath.fusion.fuse import FuseOptions

    return FuseOptions.from_preset(
        "fast",
        folds=3,
        seeds=seeds,
        n_bags=4,
        arch={"hidden": 32, "n_heads": 4, "attn_dim": 16},
        train={"epochs": 15, "batch_size": 64, "lr": 5e-3},
    )


def run_demo(out: Path, seeds: list[int], on_progress=None):
    """Write (or reuse) the demo cohort under ``out`` and fuse it; returns fuse's FuseResult.

    Steps are reported through the ``fusecpath.demo`` logger; ``on_progress`` is fuse's progress callback.
    """
    import torch

    from fusecpath.fusion.fuse import fuse
    from fusecpath.synthetic.features import make_feature_cohort

    cohort, run = out / "complementary", out / "run"
    labels, truth = cohort / "labels.csv", cohort / "ground_truth.json"
    written = json.loads(truth.read_text()) if labels.is_file() and truth.is_file() else {}
    if written.get("design") == "complementary" and len(written.get("slides", {})) == N_SLIDES:
        log.info("1. cohort: reusing %s", cohort)
    else:
        log.info("1. cohort: %d slides of complementary features into %s ...", N_SLIDES, cohort)
        labels = make_feature_cohort(
            cohort, "complementary", N_SLIDES, seed=0, layout="trident", fms=PATCH_FMS, slide_fms=SLIDE_FMS
        )
    features = Path(json.loads(truth.read_text())["features"])
    torch.set_num_threads(1)  # small models: one thread is as fast, and never oversubscribes a shared CPU
    log.info(
        "2. fuse: %s fused, %s as teacher; ablations and baselines; 3 folds x seeds %s (preset fast, small dims) ...",
        ", ".join(PATCH_FMS),
        ", ".join(SLIDE_FMS),
        seeds,
    )
    options = demo_options(seeds)
    options.on_progress = on_progress
    return fuse(
        list(PATCH_FMS + SLIDE_FMS), labels, "classification", run, features=features, options=options
    )
