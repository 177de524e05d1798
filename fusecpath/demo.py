"""``make demo``: the whole story on a laptop CPU, with nothing downloaded.

1. ``fusecpath synth --design regions``: 100 synthetic H&E slides; a positive carries a colour region
   AND a texture region, a negative two regions of one kind (see fusecpath.synthetic.slides);
2. ``fusecpath extract``: two built-in encoders that each see one cue (hed-stain colour, gabor-texture
   texture) plus their mean-pooled slide encoders (the distillation teachers);
3. ``fusecpath fuse``: FuseCPath and every baseline on the same 5 patient-level folds, then the table.

Telling the classes apart takes both encoders AND relating one region to another, which FuseCPath's
cross-cluster attention does and ABMIL (each patch scored on its own) does not. With 40 slides no method
learnt it (fused AUROC 0.49); with these 100 the fused model reached 0.996 ± 0.009 against 0.620 for the
best single-encoder baseline and 0.678 for ABMIL on concatenated features. random-cnn is
left out: an untrained CNN sees colour and texture in one patch at once, so it would blur what fusing
two partial views does. The mean-pooled teachers know nothing the patch features do not, so the ablation
without distillation is expected to do as well here.

Steps already done (cohort written, features stored) are reused, so a second run goes straight to the
fusion. The fusion uses a CPU-sized preset (fewer clusters, bags and epochs than the paper, AdamW) so
that it ends in minutes; ``fusecpath fuse`` without options uses the paper's settings.
Set FUSECPATH_DEMO_DIR to choose the folder (default ./demo-output) and FUSECPATH_DEMO_SLIDES the size.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

PATCH_FMS = ("hed-stain", "gabor-texture")
SLIDE_FMS = tuple(f"mean-{fm}" for fm in PATCH_FMS)


def demo_options(seed: int = 0):
    from fusecpath.fusion.fuse import FuseOptions
    from fusecpath.training.loop import TrainConfig

    return FuseOptions(
        folds=5,
        seed=seed,
        n_clusters=16,
        per_cluster=4,
        n_bags=8,
        arch={"hidden": 128, "n_heads": 8},
        train=TrainConfig(epochs=15, optimizer="adamw", lr=1e-3, weight_decay=1e-2, batch_size=32, seed=seed),
    )


def main() -> None:
    import torch
    from rich.console import Console

    from fusecpath.fusion.fuse import fuse
    from fusecpath.report.table import results_table

    console = Console()
    out = Path(os.environ.get("FUSECPATH_DEMO_DIR", "demo-output"))
    n_slides = int(os.environ.get("FUSECPATH_DEMO_SLIDES", "100"))
    cohort, features, run = out / "cohort", out / "features", out / "run"
    start = time.perf_counter()

    from fusecpath.synthetic.slides import GENERATOR, make_cohort

    labels, truth = cohort / "labels.csv", cohort / "ground_truth.json"
    written = json.loads(truth.read_text()) if labels.is_file() and truth.is_file() else {}
    if (
        written.get("generator") == GENERATOR
        and written.get("design") == "regions"
        and len(written.get("slides", {})) == n_slides
    ):
        console.print(f"[bold]1. synth[/bold]: reusing {labels}")
    else:
        console.print(f"[bold]1. synth[/bold]: {n_slides} slides into {cohort} ...")
        labels = make_cohort(cohort, n_slides, seed=0, design="regions")

    from fusecpath.features.extract import extract

    console.print(f"[bold]2. extract[/bold]: {', '.join(PATCH_FMS + SLIDE_FMS)} into {features} ...")
    result = extract([cohort], list(PATCH_FMS + SLIDE_FMS), features, progress=True)
    console.print(
        f"   {len(result.written)} written, {len(result.skipped)} already stored, "
        f"{len(result.failures)} failed ({time.perf_counter() - start:.0f} s so far)"
    )

    torch.set_num_threads(1)  # small models: one thread is as fast, and never oversubscribes a shared CPU
    console.print(
        f"[bold]3. fuse[/bold]: {', '.join(PATCH_FMS)} fused, {', '.join(SLIDE_FMS)} as teachers, "
        "with baselines, 5 folds (CPU preset) ..."
    )
    fused = fuse(
        list(PATCH_FMS + SLIDE_FMS), labels, "classification", run, features=features, options=demo_options()
    )
    console.print(results_table(fused.metrics))
    console.print(
        f"report: {run}/metrics.json, predictions.csv, {fused.plot.name}, model/ "
        f"({time.perf_counter() - start:.0f} s in all)"
    )


if __name__ == "__main__":
    main()
