"""Extraction throughput of a real foundation-model architecture on a GPU: UNI (ViT-L/16, 303M).

    python benchmarks/gpu_fm.py [--device cuda] [--slides 6] [--width-um 9200] [--height-um 7200]
                                [--workers 12] [--batch-size 256] [--out DIR] [--small]

UNI is built with random weights, saved to a local safetensors file and named with FUSECPATH_WEIGHTS_UNI
(nothing is downloaded). On one synthetic cohort, in one run, it prints:
  (a) the raw model: patches/s on a batch of 224x224 inputs already on the device, fp32 and under bf16 and
      fp16 autocast (UNI's spec says fp16, the precision `extract` runs it at);
  (b) raw slide reads: OpenSlide read + decode of the same 256-px patches in the same DataLoader workers;
  (c) `extract` (read, preprocess on the device, model, HDF5): patches/s over the slides after the first
      (the first one loads the model), and over the whole run;
and the fraction of (a) at the spec's precision that (c) reaches. --small shrinks the ViT (a CPU check).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract import raw_read  # noqa: E402  (benchmarks/extract.py)

import fusecpath  # noqa: E402
from fusecpath.encoders import timm_vit  # noqa: E402
from fusecpath.features.extract import extract  # noqa: E402
from fusecpath.synthetic.slides import make_cohort  # noqa: E402
from fusecpath.testing import shrink  # noqa: E402

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def model_rate(model, device: torch.device, dtype, batch: int, px: int, seconds: float = 3.0) -> float:
    """Patches/s of ``model`` on one (batch, 3, px, px) input, after warm-up, for about ``seconds``."""
    x = torch.randn(batch, 3, px, px, device=device)
    cast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()

    def timed(iters: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(iters):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    with torch.inference_mode(), cast:
        timed(2)  # warm-up: kernels chosen, memory allocated
        one = timed(1)
        iters = max(3, int(seconds / one))
        return batch * iters / timed(iters)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=Path("/tmp/fusecpath-gpu-fm"))
    parser.add_argument("--slides", type=int, default=6)
    parser.add_argument("--width-um", type=float, default=9200.0)
    parser.add_argument("--height-um", type=float, default=7200.0)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--small", action="store_true", help="a 2-block, 32-wide ViT (check on a CPU)")
    args = parser.parse_args()
    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    cohort = args.out / "cohort"
    if not (cohort / "labels.csv").exists():
        make_cohort(
            cohort,
            args.slides,
            seed=1,
            width_um=args.width_um,
            height_um=args.height_um,
            workers=min(args.slides, os.cpu_count() or 1),
        )
    slides = sorted(p for p in cohort.iterdir() if p.suffix in (".svs", ".tiff"))[: args.slides]
    print(f"cohort: {len(slides)} slides in {time.perf_counter() - started:.1f} s", flush=True)

    spec = fusecpath.get_spec("uni")
    if args.small:
        spec = shrink(spec, {"embed_dim": 32, "depth": 2, "num_heads": 2}, embed_dim=32)
    weights = args.out / "uni-random.safetensors"
    if not weights.exists():
        from safetensors.torch import save_file

        with torch.device(device):  # timm's init is much faster on the GPU
            trunk = timm_vit.architecture(spec).trunk
        save_file({k: v.detach().contiguous().cpu() for k, v in trunk.state_dict().items()}, str(weights))
        del trunk
    os.environ["FUSECPATH_WEIGHTS_UNI"] = str(weights)
    print(
        f"UNI: {spec.arch['model_name']}, random weights in {weights} ({weights.stat().st_size / 2**20:.0f} MiB)"
    )

    report: dict = {"device": str(device), "batch_size": args.batch_size, "workers": args.workers}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)

    # (a) the raw model
    started = time.perf_counter()
    model = fusecpath.load_encoder(spec, device=str(device))
    print(f"load_encoder: {time.perf_counter() - started:.1f} s", flush=True)
    report["parameters"] = sum(p.numel() for p in model.parameters())
    modes = PRECISIONS if device.type == "cuda" else {"fp32": None}
    report["model"] = {}
    for name, dtype in modes.items():
        rate = model_rate(model, device, dtype, args.batch_size, spec.input_px)
        report["model"][name] = round(rate, 1)
        print(f"(a) raw model {name:5s} batch {args.batch_size}: {rate:9.1f} patches/s", flush=True)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # (b) raw reads, (c) the extraction pipeline
    n, wall, cpu = raw_read(slides, args.workers, args.batch_size)
    report["read"] = {"patches": n, "patches_per_s": round(n / wall, 1), "cpu_s": round(cpu, 1)}
    print(f"(b) raw read ({args.workers} workers): {n} patches, {n / wall:9.1f} patches/s", flush=True)
    started = time.perf_counter()
    result = extract(
        slides,
        [spec],
        args.out / "features",
        device=str(device),
        batch_size=args.batch_size,
        workers=args.workers,
        progress=False,
    )
    total = time.perf_counter() - started
    if result.failures:
        raise SystemExit(f"extract failed: {result.failures}")
    rows = result.slides
    steady = rows[1:] or rows
    patches = sum(r["patches"] for r in rows)
    rate = sum(r["patches"] for r in steady) / sum(r["seconds"] for r in steady)
    report["extract"] = {
        "patches": patches,
        "seconds": round(total, 1),
        "patches_per_s_whole_run": round(patches / total, 1),
        "patches_per_s_after_first_slide": round(rate, 1),
        "per_slide": [(r["patches"], r["seconds"]) for r in rows],
    }
    mode = f"{spec.precision} autocast" if device.type == "cuda" and spec.precision != "fp32" else "fp32"
    print(
        f"(c) extract ({mode}): {patches} patches in {total:.1f} s: "
        f"{patches / total:.1f} patches/s whole run, {rate:.1f} patches/s after the first slide",
        flush=True,
    )
    reference = report["model"].get(spec.precision, report["model"]["fp32"])
    report["extract_over_model"] = round(rate / reference, 3)
    report["extract_over_read"] = round(rate / report["read"]["patches_per_s"], 3)
    print(
        f"extract / raw model ({spec.precision if spec.precision in report['model'] else 'fp32'}): "
        f"{rate / reference:.3f}   extract / raw read: {report['extract_over_read']:.3f}"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
