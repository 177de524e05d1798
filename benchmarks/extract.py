"""Extraction throughput, memory and preprocessing fidelity, measured side by side.

    python benchmarks/extract.py [--slides 2] [--width-um 8192] [--height-um 6144] [--workers 1]
                                 [--repeat 3] [--device cpu|cuda] [--write]
    python benchmarks/extract.py readers [--reader-patches 600] [--write]
    python benchmarks/extract.py rss [--patches 100000] [--fixed-mmap-threshold]

The first form prints, on one synthetic cohort (SVS and generic TIFF), each repeat measuring all rows
side by side:
  raw        read + decode of every tissue patch (0.5 µm/px, 256 px) by the same reader processes,
             nothing else;
  trivial    extraction with a trivial encoder (per-channel mean and variance; input = read size, no
             resize): reading dominates, so trivial / raw is the pipeline's overhead; once more with
             torch's intra-op threads left at every core instead of the cores the readers leave;
  trivial x3 three trivial encoders in one pass, and one after another (three passes);
  builtin x3 hed-stain, gabor-texture and random-cnn in one pass, and in three passes;
and the ratios (median and range over the repeats). ``--device cuda`` adds a ViT-L/16 (random weights,
bf16): its raw model throughput, extraction with it, and extraction / min(read, model). Then, per
registered patch FM, the difference of fusecpath's preprocessing to its authors' pipeline on patches of
the real slide (docs/preprocessing.md). ``--write`` writes benchmarks/results/extract.json.

``readers``: patches/s of OpenSlide against direct tile decoding (tifffile + imagecodecs), tiffslide and
fastslide (``pip install .[bench]``) on the cohort's SVS and TIFF and the real slide, and how far their
pixels are from OpenSlide's.
``rss``: /usr/bin/time -v's maximum resident set size of extracting a slide of ~1,000, ~10,000 and
~100,000 patches (1 µm/px, 128 px) with the trivial encoder.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from fusecpath.features import extract as extraction
from fusecpath.features.extract import extract
from fusecpath.features.readers import Geometry, ReaderPool
from fusecpath.files import write_atomic
from fusecpath.slides import open_slide, segment_tissue, tile_tissue
from fusecpath.synthetic.slides import make_cohort
from fusecpath.zoo import EncoderSpec

BUILTIN = ["hed-stain", "gabor-texture", "random-cnn"]
REAL_SLIDE = Path(__file__).resolve().parents[1] / "tests" / "data" / "cmu_small_region.svs"
RESULTS = Path(__file__).resolve().parent / "results" / "extract.json"


class ChannelStats(nn.Module):
    """A trivial encoder: per-channel mean and variance of the input (6 numbers a patch), from sums and
    sums of squares as two BLAS products; ``torch.var_mean`` costs more than reading the patch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), x.shape[1], -1)
        n = flat.shape[-1]
        mean = (flat @ flat.new_ones(n, 1)).squeeze(-1) / n
        square = torch.diagonal(flat @ flat.transpose(1, 2), dim1=1, dim2=2) / n
        return torch.cat([mean, (square - mean * mean) * (n / (n - 1))], dim=1)


def load_trivial(spec: EncoderSpec, device: str = "cpu", weights: None = None) -> nn.Module:
    return ChannelStats()


def load_vitl(spec: EncoderSpec, device: str = "cpu", weights: None = None) -> nn.Module:
    import timm

    return timm.create_model("vit_large_patch16_224", pretrained=False, num_classes=0).to(device)


def trivial_spec(name: str = "trivial", mpp: float = 0.5, read_px: int = 256) -> EncoderSpec:
    """Reads like the built-ins (0.5 µm/px, 256 px) and embeds the patch as read."""
    return EncoderSpec(
        name=name,
        level="patch",
        embed_dim=6,
        loader="__main__:load_trivial",
        mpp=mpp,
        read_px=read_px,
        input_px=read_px,
        pooling="model",
    )


def vitl_spec() -> EncoderSpec:
    """UNI's geometry (256 px read, resized to 224) and precision (bf16) on a random ViT-L/16."""
    return EncoderSpec(
        name="vit-large-random",
        level="patch",
        embed_dim=1024,
        loader="__main__:load_vitl",
        read_px=256,
        resize_px=224,
        input_px=224,
        crop=True,
        precision="bf16",
    )


# ---------------------------------------------------------------------------------------------- timing


def plan(
    slides: list[Path], mpp: float = 0.5, read_px: int = 256
) -> list[tuple[Path, float, np.ndarray, float]]:
    """(path, slide mpp, tissue coords, read size at level 0) per slide: what extraction will read."""
    plans = []
    for path in slides:
        with open_slide(path) as slide:
            tiling = tile_tissue(slide, segment_tissue(slide), mpp, read_px)
            plans.append((path, slide.mpp, tiling.coords, tiling.size_level0))
    return plans


def raw_read(plans, workers: int, batch_size: int, read_px: int = 256) -> tuple[int, float]:
    """(patches, s): read and decode every planned patch with ``workers`` reader processes."""
    count = 0
    with ReaderPool(workers) as pool:
        start = time.perf_counter()  # the readers are up: extraction starts its readers before timing too
        for path, mpp, coords, size in plans:
            for _, (batch,) in pool.read(path, mpp, coords, [Geometry(0.0, size, read_px)], batch_size):
                count += len(batch)
        return count, time.perf_counter() - start


def timed_extract(slides, fms, out: Path, args) -> tuple[int, float]:
    """(patches, s) of one extraction run into a fresh folder."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    result = extract(slides, fms, out, workers=args.workers, batch_size=args.batch_size, device=args.device)
    seconds = time.perf_counter() - start
    if result.failures:
        raise SystemExit(f"extraction failed: {result.failures}")
    return sum(s["patches"] for s in result.slides), seconds


def every_core(run, *args):
    """``run(*args)`` with extraction's torch threads left at every core (not the cores the readers
    leave). Patched by hand: unittest.mock's imports alone add 13 MiB to the rss mode's processes."""
    chosen = extraction.compute_threads
    extraction.compute_threads = lambda workers, current: current
    try:
        return run(*args)
    finally:
        extraction.compute_threads = chosen


def model_throughput(spec: EncoderSpec, device: str, batch_size: int, batches: int = 20) -> float:
    """Patches/s of the model alone on random input (bf16 autocast), after a warm-up."""
    model = load_vitl(spec, device).eval()
    x = torch.randn(batch_size, 3, 224, 224, device=device)
    with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16):
        for _ in range(3):
            model(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(batches):
            model(x)
        torch.cuda.synchronize()
    return batches * batch_size / (time.perf_counter() - start)


def _cohort(args) -> list[Path]:
    cohort = args.out / f"cohort-{args.slides}x{args.width_um:.0f}x{args.height_um:.0f}"
    if not (cohort / "labels.csv").exists():
        make_cohort(cohort, args.slides, seed=args.seed, width_um=args.width_um, height_um=args.height_um)
    return sorted(p for p in cohort.iterdir() if p.suffix in (".svs", ".tiff"))[: args.slides]


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def throughput(args) -> list[dict]:
    slides = _cohort(args)
    plans = plan(slides)
    patches = sum(len(p[2]) for p in plans)
    trivials = [trivial_spec(f"trivial-{i}") for i in range(3)]
    timed_extract(slides[:1], [trivial_spec(), *BUILTIN], args.out / "warm-up", args)  # imports, page cache
    rows: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    for repeat in range(args.repeat):
        n, raw = raw_read(plans, args.workers, args.batch_size)
        one = timed_extract(slides, [trivial_spec()], args.out / "trivial", args)[1]
        all_threads = every_core(timed_extract, slides, [trivial_spec()], args.out / "trivial-threads", args)[
            1
        ]
        three_one = timed_extract(slides, trivials, args.out / "trivial3", args)[1]
        three_seq = sum(timed_extract(slides, [s], args.out / f"seq-{s.name}", args)[1] for s in trivials)
        builtin_one = timed_extract(slides, BUILTIN, args.out / "builtin", args)[1]
        builtin_seq = sum(timed_extract(slides, [fm], args.out / f"seq-{fm}", args)[1] for fm in BUILTIN)
        measured = {
            "raw read + decode": raw,
            "trivial encoder, extraction": one,
            f"trivial encoder, extraction, torch at {torch.get_num_threads()} threads (not the default)": all_threads,
            "3 trivial encoders, one pass": three_one,
            "3 trivial encoders, three passes": three_seq,
            "3 built-in encoders, one pass": builtin_one,
            "3 built-in encoders, three passes": builtin_seq,
        }
        for key, seconds in measured.items():
            rows.setdefault(key, []).append(n / seconds)
        ratios.setdefault("trivial extraction / raw read (patches/s)", []).append(raw / one)
        ratios.setdefault("3 trivial: three passes / one pass (time)", []).append(three_seq / three_one)
        ratios.setdefault("3 built-in: three passes / one pass (time)", []).append(builtin_seq / builtin_one)
        print(
            f"repeat {repeat + 1}: " + ", ".join(f"{k} {n / s:.0f}/s" for k, s in measured.items()),
            flush=True,
        )
    sections = [
        {
            "heading": "Throughput (patches/s, median [min-max] over repeats)",
            "text": f"{len(slides)} synthetic slides (SVS and TIFF), {patches} tissue patches at 0.5 µm/px, "
            f"256 px; {args.workers} reader process(es), batch {args.batch_size}, device {args.device}, "
            f"{args.repeat} repeats, each measuring every row side by side.",
            "columns": ["measurement", "patches/s"],
            "rows": [[k, _spread(v)] for k, v in rows.items()],
        },
        {
            "heading": "Ratios (median [min-max] over repeats)",
            "columns": ["ratio", "value", "goal"],
            "rows": [
                [k, _spread(v), goal]
                for (k, v), goal in zip(ratios.items(), ("≥ 0.9", "≥ 2.5", "> 1"), strict=True)
            ],
        },
    ]
    if args.device.startswith("cuda"):
        sections.append(gpu_section(slides, plans, args))
    return sections


def gpu_section(slides, plans, args) -> dict:
    spec = vitl_spec()
    model = model_throughput(spec, args.device, args.batch_size)
    n, seconds = raw_read(plans, args.workers, args.batch_size)
    read = n / seconds
    timed_extract(slides[:1], [spec], args.out / "vitl-warm-up", args)
    n, seconds = timed_extract(slides, [spec], args.out / "vitl", args)
    extraction = n / seconds
    rows = [
        ["ViT-L/16 bf16, model alone", f"{model:.0f}"],
        [f"raw read + decode ({args.workers} readers)", f"{read:.0f}"],
        ["extraction with the ViT-L", f"{extraction:.0f}"],
        ["extraction / min(read, model)", f"{extraction / min(read, model):.3f} (goal ≥ 0.9)"],
    ]
    for row in rows:
        print(f"{row[0]:45s} {row[1]}")
    name = torch.cuda.get_device_name()
    return {"heading": f"ViT-L/16 on {name}", "columns": ["measurement", "patches/s"], "rows": rows}


def preprocessing_section() -> dict:
    """Every registered patch FM: fusecpath's input against its authors' pipeline (CPU and float paths)."""
    from fusecpath.api import list_encoders
    from fusecpath.testing import compare_to_reference

    rows, cache = [], {}
    with open_slide(REAL_SLIDE) as slide:
        for spec in list_encoders("patch"):
            if spec.read_geometry not in cache:
                size = slide.patch_size_level0(*spec.read_geometry)
                xs = np.linspace(0, slide.dimensions[0] - size - 1, 4)
                ys = np.linspace(0, slide.dimensions[1] - size - 1, 4)
                cache[spec.read_geometry] = torch.from_numpy(
                    np.stack([slide.read_patch(x, y, size, spec.read_px) for x in xs for y in ys])
                )
            patches = cache[spec.read_geometry]
            for path, in_float in (("cpu", None), ("float (device)", True)):
                got = compare_to_reference(patches, spec, in_float=in_float)
                rows.append(
                    [
                        spec.name,
                        path,
                        f"{got['input_max_grey']:.2f}",
                        f"{got['input_mean_grey']:.4f}",
                        f"{got['feature_min_cosine']:.6f}",
                        f"{got['feature_max_rel_diff']:.1e}",
                    ]
                )
    return {
        "heading": "Preprocessing against the FM authors' pipeline",
        "text": "16 patches of tests/data/cmu_small_region.svs at each FM's read geometry; differences in grey "
        "levels of the uint8 image; features of a seeded random-weight conv net. Tolerance: "
        "docs/preprocessing.md.",
        "columns": ["FM", "path", "max grey", "mean grey", "min cosine", "max feature diff (rel.)"],
        "rows": rows,
    }


# ---------------------------------------------------------------------------------------------- readers


def _other_reader(name: str, path: Path, slide):
    """``read_patch(x, y, size, px)`` through another library, on fusecpath's level choice and resize
    (so only the decoding differs); None when the library is not installed (the ``bench`` extra)."""
    try:
        if name == "tiffslide":
            import tiffslide

            other = tiffslide.TiffSlide(path)

            def region(x, y, level, side):
                return other.read_region((x, y), level, (side, side), as_array=True)[..., :3]
        else:
            import fastslide

            other = fastslide.FastSlide.from_file_path(path, cache=64 << 20)

            def region(x, y, level, side):
                ds = slide.level_downsamples[level]
                return other.read_region((round(x / ds), round(y / ds)), level, (side, side)).numpy()[..., :3]
    except ImportError:
        return None

    def read_patch(x, y, size, px):
        level = slide.best_level(size / px)
        side = max(1, round(size / slide.level_downsamples[level]))
        rgb = np.ascontiguousarray(region(round(x), round(y), level, side))
        if side != px:
            rgb = np.array(Image.fromarray(rgb).resize((px, px), Image.Resampling.BILINEAR))
        return rgb

    return read_patch


READERS = ("openslide", "direct", "tiffslide", "fastslide")


def readers(args) -> list[dict]:
    """fusecpath's patch reads through OpenSlide against direct tile decoding (tifffile + imagecodecs),
    tiffslide and fastslide, each from a freshly opened slide, on the same tissue patches (0.5 µm/px,
    256 px, grid order)."""
    rows = []
    for path in [*_cohort(args), REAL_SLIDE]:
        rates, pixels = {}, {}
        for name in READERS:
            with open_slide(path, direct_tiles=name == "direct") as slide:
                tiling = tile_tissue(slide, segment_tissue(slide), 0.5, 256)
                coords = tiling.coords[: args.reader_patches]
                try:
                    read = slide.read_patch if name in READERS[:2] else _other_reader(name, path, slide)
                    if read is None:
                        rates[name] = "not installed"
                        continue
                    start = time.perf_counter()
                    pixels[name] = np.stack([read(x, y, tiling.size_level0, 256) for x, y in coords])
                except Exception as exc:  # noqa: BLE001 - a format the library does not read is a result
                    rates[name] = f"fails ({type(exc).__name__})"
                    continue
                rates[name] = f"{len(coords) / (time.perf_counter() - start):.0f}"
                level = f"{slide.best_level(tiling.size_level0 / 256)} of {slide.level_count}"
        cells = [rates[n] for n in READERS]
        deltas = [
            str(int(np.abs(pixels["openslide"].astype(int) - pixels[n]).max())) if n in pixels else "-"
            for n in READERS[1:]
        ]
        rows.append([path.name, level, str(len(coords)), *cells, *deltas])
        print(*rows[-1], flush=True)
    return [
        {
            "heading": "Readers: 0.5 µm/px 256-px patches/s in one process",
            "text": "tissue patches in grid order from a freshly opened slide, the same level and resize for "
            "every reader; OpenSlide's read_region, decoding the TIFF tiles directly (tifffile + imagecodecs, "
            "fusecpath/slides/tiles.py), tiffslide and fastslide (the bench extra); max |Δ| against OpenSlide",
            "columns": [
                "slide",
                "level read",
                "patches",
                *READERS,
                *(f"max |Δ| {n}" for n in READERS[1:]),
            ],
            "rows": rows,
        }
    ]


# ---------------------------------------------------------------------------------------------- memory


def peak_rss(args) -> list[dict]:
    rows = []
    tile_um = 128.0
    for label, patches in (("small", 1000), ("medium", args.patches // 10), ("large", args.patches)):
        side_um = math.sqrt(patches * tile_um**2 / 0.85)
        cohort = args.out / f"rss-{label}"
        if not (cohort / "labels.csv").exists():
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
        slide = next(p for p in cohort.iterdir() if p.suffix == ".svs")
        out = args.out / f"rss-{label}-features"
        shutil.rmtree(out, ignore_errors=True)
        command = ["/usr/bin/time", "-v", sys.executable, __file__, "_one", str(slide), str(out)]
        command += ["--workers", str(args.workers), "--batch-size", str(args.batch_size)]
        env = dict(os.environ)
        if args.fixed_mmap_threshold:  # glibc then returns freed batch buffers instead of keeping a heap
            env["MALLOC_MMAP_THRESHOLD_"] = "131072"
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
        info = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append([label, str(info["patches"]), f"{info['seconds']:.0f}", f"{rss_kb / 1024:.0f}"])
        print(*rows[-1])
    mmap = " with MALLOC_MMAP_THRESHOLD_=131072" if args.fixed_mmap_threshold else " (default malloc)"
    return [
        {
            "heading": f"Peak RSS of extraction{mmap}",
            "text": f"trivial encoder, 1 µm/px 128-px patches, {args.workers} reader process(es); "
            "/usr/bin/time -v's maximum resident set size (the largest single process)",
            "columns": ["slide", "patches", "seconds", "max RSS (MiB)"],
            "rows": rows,
        }
    ]


def one(args) -> None:
    """Extract one slide with the trivial encoder at 1 µm/px, 128 px (the rss mode's child)."""
    start = time.perf_counter()
    result = extract(
        [args.slide],
        [trivial_spec(mpp=1.0, read_px=128)],
        args.features,
        workers=args.workers,
        batch_size=args.batch_size,
    )
    if result.failures:
        raise SystemExit(str(result.failures))
    print(json.dumps({"patches": result.slides[0]["patches"], "seconds": time.perf_counter() - start}))


MODE_HEADINGS = {
    "throughput": ("Throughput", "Ratios", "ViT-L", "Preprocessing"),
    "readers": ("Readers",),
    "rss": ("Peak RSS of extraction (",),
    "rss-mmap": ("Peak RSS of extraction with",),
}


def write(sections: list[dict], mode: str) -> None:
    """Merge this mode's sections into benchmarks/results/extract.json (other modes' sections stay)."""
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"sections": []}
    keep = [s for s in previous["sections"] if not s["heading"].startswith(MODE_HEADINGS[mode])]
    report = {
        "title": "Extraction: throughput, readers, memory, preprocessing",
        "command": "python " + " ".join(["benchmarks/extract.py", *sys.argv[1:]]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
        + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""),
        "sections": keep + sections,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(RESULTS, json.dumps(report, indent=1, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "mode", nargs="?", default="throughput", choices=["throughput", "readers", "rss", "_one"]
    )
    parser.add_argument("slide", nargs="?", type=Path)
    parser.add_argument("features", nargs="?", type=Path)
    parser.add_argument("--out", type=Path, default=Path("/tmp/fusecpath-bench"))
    parser.add_argument("--slides", type=int, default=2)
    parser.add_argument("--width-um", type=float, default=8192.0)
    parser.add_argument("--height-um", type=float, default=6144.0)
    parser.add_argument("--patches", type=int, default=100_000)
    parser.add_argument("--reader-patches", type=int, default=600)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-preprocessing", action="store_true", help="skip the per-FM preprocessing table")
    parser.add_argument("--write", action="store_true", help="write benchmarks/results/extract.json")
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
    if args.mode == "throughput":
        sections = throughput(args)
        if not args.no_preprocessing:
            sections.append(preprocessing_section())
    else:
        sections = readers(args) if args.mode == "readers" else peak_rss(args)
    for section in sections:
        print(f"\n## {section['heading']}")
        if section.get("text"):
            print(section["text"])
        print(" | ".join(section["columns"]))
        for row in section["rows"]:
            print(" | ".join(row))
    if args.write:
        write(sections, args.mode if args.mode != "rss" or not args.fixed_mmap_threshold else "rss-mmap")


if __name__ == "__main__":
    main()
