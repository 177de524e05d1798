"""Ray extraction throughput: slides per minute with 1 and 2 Ray workers, side by side in one run.

    python benchmarks/scale.py [--slides 6] [--fms hed-stain,gabor-texture] [--out DIR]

Caveat: this machine has 2 cores, so 2 workers can at best double 1 worker's rate, and less when
each worker's torch already uses both cores. On a cluster each actor holds its own GPU and the rate
grows with the number of actors until the storage is the bottleneck. Ray's start-up (a few seconds)
is timed separately and not counted in the rates.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import ray

from fusecpath.features.extract import extract
from fusecpath.synthetic.slides import make_cohort


def slides_per_minute(cohort: Path, fms: list[str], out: Path, workers: int) -> tuple[float, int]:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    result = extract([cohort], fms, out, backend="ray", ray_workers=workers, progress=False)
    elapsed = time.perf_counter() - start
    if result.failures:
        raise SystemExit(f"extraction failed: {result.failures}")
    return len(result.written) / elapsed * 60, len(result.written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slides", type=int, default=6)
    parser.add_argument("--fms", default="hed-stain,gabor-texture")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="fusecpath-scale-"))
    cohort = root / "cohort"
    if not (cohort / "labels.csv").exists():
        make_cohort(cohort, args.slides, seed=11)
    fms = args.fms.split(",")

    start = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, num_cpus=2)
    print(f"ray start-up: {time.perf_counter() - start:.1f} s (not counted)")
    try:
        slides_per_minute(cohort, fms, root / "warm", 2)  # import and page-cache warm-up, not reported
        rates = {}
        for workers in (1, 2):
            rate, n = slides_per_minute(cohort, fms, root / f"ray{workers}", workers)
            rates[workers] = rate
            print(f"{workers} Ray worker(s): {n} slides, {rate:.1f} slides/min")
    finally:
        ray.shutdown()
    print(f"scaling 2 vs 1 workers: {rates[2] / rates[1]:.2f}x (ideal 2.00x; this machine has 2 cores)")


if __name__ == "__main__":
    main()
