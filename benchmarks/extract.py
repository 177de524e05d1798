"""Extraction throughput and memory on a synthetic cohort.

    python benchmarks/extract.py [--slides 2] [--width-um 4600] [--height-um 3600] [--workers 1] [--out DIR]
    python benchmarks/extract.py rss [--patches 100000] [--workers 1] [--out DIR]

The first form prints, on one cohort in one run:
  (a) raw OpenSlide read + decode throughput (patches/s) with the same DataLoader workers;
  (b) one-pass extraction with the three built-in encoders (hed-stain, gabor-texture, random-cnn);
  (c) the same three encoders run one after another, one pass each (as per-encoder tools do);
and the ratios b/a and c/b (c/b > 1: one pass is faster), plus a trivial encoder (per-channel mean and
std of a 64-px thumbnail of each patch: reading dominates) in one pass against (a), and three trivial
encoders one-pass vs sequential.
The second form generates a small (~1,000), a medium (~10,000) and a large (~100,000 patches) slide
(1 µm/px level 0, 128-px patches, i.e.
128 µm patches as usual at a lower scan resolution, so the big slide is 1.8 gigapixels, not 7) and
reports /usr/bin/time -v's maximum resident set size of extracting each with the trivial encoder
(``--fixed-mmap-threshold``: with glibc's mmap threshold fixed, so freed batch buffers leave the heap).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from fusecpath.features.extract import PatchDataset, ReadGroup, _loader, extract
from fusecpath.slides import open_slide, segment_tissue, tile_tissue
from fusecpath.synthetic.slides import make_cohort
from fusecpath.zoo import EncoderSpec

BUILTIN = ["hed-stain", "gabor-texture", "random-cnn"]


def cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (DataLoader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class ChannelStats(nn.Module):
    """A trivial encoder: per-channel mean and std of the input (6 numbers a patch)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean((2, 3)), x.std((2, 3))], dim=1)


def load_trivial(spec: EncoderSpec, device: str = "cpu", weights: None = None) -> nn.Module:
    return ChannelStats()


def trivial_spec(name: str = "trivial", mpp: float = 0.5, read_px: int = 256) -> EncoderSpec:
    """Reads like the built-ins (0.5 µm/px, 256 px), embeds a 64-px thumbnail of the patch."""
    return EncoderSpec(
        name=name,
        level="patch",
        embed_dim=6,
        loader="__main__:load_trivial",
        mpp=mpp,
        read_px=read_px,
        input_px=64,
        pooling="model",
    )


def raw_read(slides: list[Path], workers: int, batch_size: int) -> tuple[int, float, float]:
    """(patches, wall s, CPU s): read and decode every tissue patch at 0.5 µm/px, 256 px, nothing else."""
    plans = []
    for path in slides:
        with open_slide(path) as slide:
            tiling = tile_tissue(slide, segment_tissue(slide), 0.5, 256)
            plans.append((path, slide.mpp, tiling))
    count, start, cpu = 0, time.perf_counter(), cpu_seconds()
    for path, mpp, tiling in plans:
        group = ReadGroup(0.5, 256, tiling.size_level0, 0.0, ())
        for (batch,) in _loader(PatchDataset(path, mpp, tiling.coords, [group]), batch_size, workers, False):
            count += len(batch)
    return count, time.perf_counter() - start, cpu_seconds() - cpu


def timed_extract(slides, fms, out: Path, workers: int, batch_size: int) -> tuple[int, float, float]:
    """(patches, wall s, CPU s) of one extraction run into a fresh folder."""
    shutil.rmtree(out, ignore_errors=True)
    start, cpu = time.perf_counter(), cpu_seconds()
    result = extract(slides, fms, out, workers=workers, batch_size=batch_size, progress=False)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    if result.failures:
        raise SystemExit(f"extraction failed: {result.failures}")
    return sum(s["patches"] for s in result.slides), seconds, cpu


def throughput(args) -> dict:
    cohort = args.out / "cohort"
    if not (cohort / "labels.csv").exists():
        make_cohort(cohort, args.slides, seed=args.seed, width_um=args.width_um, height_um=args.height_um)
    slides = sorted(p for p in cohort.iterdir() if p.suffix in (".svs", ".tiff"))[: args.slides]
    w, b = args.workers, args.batch_size
    rows = {"a_raw_read": raw_read(slides, w, b)}
    timed_extract(slides[:1], [trivial_spec(), *BUILTIN], args.out / "warm-up", w, b)  # imports, page cache
    rows["trivial_one_pass"] = timed_extract(slides, [trivial_spec()], args.out / "trivial", w, b)
    trivials = [trivial_spec(f"trivial-{i}") for i in range(3)]
    rows["trivial3_one_pass"] = timed_extract(slides, trivials, args.out / "trivial3", w, b)
    rows["trivial3_sequential"] = _summed(
        [timed_extract(slides, [s], args.out / f"seq-{s.name}", w, b) for s in trivials]
    )
    rows["b_one_pass_3_builtin"] = timed_extract(slides, BUILTIN, args.out / "one-pass", w, b)
    rows["c_sequential_3_builtin"] = _summed(
        [timed_extract(slides, [fm], args.out / f"seq-{fm}", w, b) for fm in BUILTIN]
    )
    report = {
        "slides": len(slides),
        "patches": rows["a_raw_read"][0],
        "workers": w,
        "batch_size": b,
        "torch_threads": torch.get_num_threads(),
        "rows": {},
    }
    for key, (n, wall, cpu) in rows.items():
        report["rows"][key] = {
            "patches_per_s": round(n / wall, 1),
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "patches_per_cpu_s": round(n / cpu, 1),
        }
        print(
            f"{key:24s} {n / wall:8.1f} patches/s wall ({wall:6.1f} s)   {n / cpu:8.1f} patches/CPU-s ({cpu:6.1f} s)"
        )
    r = report["rows"]
    for name, num, den in (
        ("b/a", "b_one_pass_3_builtin", "a_raw_read"),
        ("trivial one-pass / a", "trivial_one_pass", "a_raw_read"),
    ):
        report[f"throughput {name}"] = {
            k: round(r[num][k] / r[den][k], 3) for k in ("patches_per_s", "patches_per_cpu_s")
        }
    for name, slow, fast in (
        ("c/b", "c_sequential_3_builtin", "b_one_pass_3_builtin"),
        ("trivial x3 sequential / one-pass", "trivial3_sequential", "trivial3_one_pass"),
    ):
        report[f"time {name}"] = {k: round(r[slow][k] / r[fast][k], 3) for k in ("wall_s", "cpu_s")}
    for key, value in report.items():
        if key.startswith(("throughput", "time")):
            print(f"{key:40s} wall {list(value.values())[0]:6.3f}   CPU {list(value.values())[1]:6.3f}")
    return report


def _summed(runs: list[tuple[int, float, float]]) -> tuple[int, float, float]:
    return runs[0][0], sum(r[1] for r in runs), sum(r[2] for r in runs)


def peak_rss(args) -> dict:
    report = {}
    tile_um = 128.0
    for label, patches in (("small", 1000), ("medium", args.patches // 10), ("large", args.patches)):
        side_um = math.sqrt(patches * tile_um**2 / 0.85)
        cohort = args.out / f"rss-{label}"
        if not (cohort / "labels.csv").exists():
            started = time.perf_counter()
            make_cohort(
                cohort,
                1,
                seed=args.seed,
                mpp=1.0,
                formats=("svs",),
                width_um=side_um,
                height_um=side_um,
                tissue_fraction=0.9,
                workers=1,
            )
            print(f"{label}: generated in {time.perf_counter() - started:.0f} s")
        slide = next(p for p in cohort.iterdir() if p.suffix == ".svs")
        out = args.out / f"rss-{label}-features"
        shutil.rmtree(out, ignore_errors=True)
        command = [
            "/usr/bin/time",
            "-v",
            sys.executable,
            __file__,
            "_one",
            str(slide),
            str(out),
            "--workers",
            str(args.workers),
            "--batch-size",
            str(args.batch_size),
        ]
        env = dict(os.environ)
        if args.fixed_mmap_threshold:  # glibc then returns freed batch buffers instead of keeping a heap
            env["MALLOC_MMAP_THRESHOLD_"] = "131072"
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
        info = json.loads(done.stdout.strip().splitlines()[-1])
        report[label] = {
            "patches": info["patches"],
            "seconds": info["seconds"],
            "max_rss_mb": round(rss_kb / 1024, 1),
            "slide_mb": round(slide.stat().st_size / 2**20, 1),
        }
        print(
            f"{label}: {info['patches']} patches in {info['seconds']:.0f} s, max RSS {rss_kb / 1024:.0f} MiB "
            "(main process; DataLoader workers are separate processes)"
        )
    return report


def one(args) -> None:
    """Extract one slide with the trivial encoder at 1 µm/px, 128 px (the rss mode's child)."""
    start = time.perf_counter()
    result = extract(
        [args.slide],
        [trivial_spec(mpp=1.0, read_px=128)],
        args.features,
        workers=args.workers,
        batch_size=args.batch_size,
        progress=False,
    )
    if result.failures:
        raise SystemExit(str(result.failures))
    print(json.dumps({"patches": result.slides[0]["patches"], "seconds": time.perf_counter() - start}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", nargs="?", default="throughput", choices=["throughput", "rss", "_one"])
    parser.add_argument("slide", nargs="?", type=Path)
    parser.add_argument("features", nargs="?", type=Path)
    parser.add_argument("--out", type=Path, default=Path("/tmp/fusecpath-bench"))
    parser.add_argument("--slides", type=int, default=2)
    parser.add_argument("--width-um", type=float, default=4600.0)
    parser.add_argument("--height-um", type=float, default=3600.0)
    parser.add_argument("--patches", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fixed-mmap-threshold",
        action="store_true",
        help="rss: run the extractions with MALLOC_MMAP_THRESHOLD_=131072 (glibc)",
    )
    args = parser.parse_args()
    if args.mode == "_one":
        one(args)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    report = throughput(args) if args.mode == "throughput" else peak_rss(args)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
