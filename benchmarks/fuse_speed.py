"""Training speed of the fused model and every baseline (bags/s), and the wall time of a default run.

    python benchmarks/fuse_speed.py [--steps 6] [--run-slides 40] [--skip-run] [--write]

Bags/s: training steps (forward, backward, optimiser) of each method at the fast preset's bag shape
(16 clusters x 4 patches), batch 32, on a 3-FM cohort (hed-stain, gabor-texture, random-cnn: 576-d
concatenated), measured side by side in one process, on CPU and on CUDA when present. The default run:
``fuse`` with no options (the device's preset: fast on CPU) on a 40-slide feature-level complementary
cohort of the same 3 FMs, one seed, every baseline.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

FMS = ("hed-stain", "gabor-texture", "random-cnn")


def _cohort(n_slides: int, seed: int = 0) -> tuple[dict, np.ndarray]:
    from fusecpath.api import fm_records
    from fusecpath.training.data import SlideData

    rng = np.random.default_rng(seed)
    cohort = {}
    for i in range(n_slides):
        n = int(rng.integers(150, 300))
        patch = {
            fm["name"]: rng.standard_normal((n, fm["embed_dim"])).astype(np.float32)
            for fm in fm_records(list(FMS))
        }
        cohort[f"s{i}"] = SlideData(
            f"s{i}", np.zeros((n, 2), np.int64), patch, clusters=rng.integers(0, 16, n)
        )
    return cohort, np.arange(n_slides) % 2


def bags_per_second(device: str, steps: int) -> list[list]:
    from fusecpath.api import fm_records
    from fusecpath.fusion.fuse import FuseOptions, build_methods
    from fusecpath.training.loop import to_device
    from fusecpath.training.tasks import Task

    cohort, y = _cohort(16)
    options = FuseOptions.from_preset("fast", device=device)
    methods = [
        m for m in build_methods(cohort, fm_records(list(FMS)), [], options, 0) if hasattr(m, "n_bags")
    ]
    task = Task("classification", classes=["neg", "pos"])
    ids, targets = list(cohort), task.target_tensor(y)
    rows = []
    for method in methods:
        torch.manual_seed(0)
        model = method.build(task)
        method.prepare(model, ids)
        model.to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        batches = list(method.batches(ids, 0, 32, 0))
        n_bags, elapsed = 0, 0.0
        for i in range(steps + 1):
            inputs, pos = batches[i % len(batches)]
            inputs = to_device(inputs, device)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            loss = method.loss(model, inputs, targets[pos].to(device), task)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i:  # the first step warms up
                elapsed += time.perf_counter() - start
                n_bags += len(pos)
        rows.append([method.name, device, round(n_bags / elapsed, 1)])
        print(f"{method.name:24s} {device}: {n_bags / elapsed:8.1f} bags/s")
    return rows


def default_run(n_slides: int) -> list[list]:
    from fusecpath.fusion.fuse import FuseOptions, fuse
    from fusecpath.synthetic.features import make_feature_cohort

    root = Path(tempfile.mkdtemp(prefix="fusecpath-speed-"))
    labels = make_feature_cohort(root, "complementary", n_slides, seed=0, layout="store", fms=FMS)
    options = FuseOptions.from_preset("fast")
    start = time.perf_counter()
    result = fuse(
        list(FMS), labels, "classification", root / "run", features=root / "features", options=options
    )
    wall = time.perf_counter() - start
    n_methods = len(result.metrics["methods"])
    print(
        f"default run ({options.preset} preset, {n_slides} slides, {len(FMS)} FMs, {n_methods} methods): {wall:.0f} s"
    )
    return [[options.preset, n_slides, len(FMS), n_methods, options.folds, round(wall, 1)]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--run-slides", type=int, default=40)
    parser.add_argument("--skip-run", action="store_true", help="only the bags/s table")
    parser.add_argument("--write", action="store_true", help="save benchmarks/results/fuse_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small models: one thread is as fast and never oversubscribes a shared CPU
    rows = bags_per_second("cpu", args.steps)
    if torch.cuda.is_available():
        rows += bags_per_second("cuda", args.steps)
    sections = [
        {
            "heading": "Training speed (bags/s), fast preset bag shape, batch 32, 3 FMs (576-d)",
            "columns": ["method", "device", "bags/s"],
            "rows": rows,
        }
    ]
    if not args.skip_run:
        sections.append(
            {
                "heading": "Wall time of a default `fuse` run (one seed, every baseline)",
                "columns": ["preset", "slides", "FMs", "methods", "folds", "seconds"],
                "rows": default_run(args.run_slides),
            }
        )
    if args.write:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from _results import write_results

        print(write_results(__file__, "fuse: training speed of the fused model and its baselines", sections))


if __name__ == "__main__":
    main()
