"""One-pass multi-FM extraction: each slide is read once and every chosen FM embeds the same patches.

Per slide: plan it (``plan``: find tissue, tile it on one grid, kept from the feature file when there
is one, else the read geometry of the first patch FM), read every patch once per read geometry in the
run's reader processes (``readers``), let each FM of that geometry preprocess and embed the same uint8
pixels on the device (FMs with the same preprocessing share its output), hand the features to the
writer thread (``writer``) that streams them into a temporary HDF5 file, and rename it into place.
The next slide is planned in a thread, and its reads queued, while the current one is read; under the
slide's lock the plan is checked against the slide and its file again. Slide FMs are computed from the
stored features of the patch FM they require, which is extracted as well when missing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fusecpath.errors import FusecpathError
from fusecpath.features.plan import ExtractionError, ReadGroup, SlidePlan, plan_slide, slide_state
from fusecpath.features.readers import ReaderPool
from fusecpath.features.store import (
    FORMAT,
    VERSION,
    SlideLockedError,
    feature_path,
    slide_lock,
    updating,
)
from fusecpath.features.writer import FeatureWriter
from fusecpath.slides.reader import Slide, open_slide, slide_id
from fusecpath.zoo import EncoderSpec

log = logging.getLogger(__name__)

SLIDE_SUFFIXES = (
    ".svs",
    ".tif",
    ".tiff",
    ".ndpi",
    ".vms",
    ".vmu",
    ".scn",
    ".mrxs",
    ".svslide",
    ".bif",
    ".dcm",
    ".czi",
    ".png",
    ".jpg",
    ".jpeg",
)
CHUNK_BYTES = 1 << 20  # HDF5 chunk size for patch features


@dataclass
class ExtractionResult:
    """What a run did: files written, files already complete, slides that failed (one line each), and
    slides another live process was writing."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    busy: list[Path] = field(default_factory=list)
    slides: list[dict[str, Any]] = field(default_factory=list)  # per slide: id, patches, fms, seconds

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "written": [str(p) for p in self.written],
            "skipped": [str(p) for p in self.skipped],
            "busy": [str(p) for p in self.busy],
            "failures": [{"slide": s, "error": m} for s, m in self.failures],
            "slides": self.slides,
        }


# ---------------------------------------------------------------------------------------------- inputs


def find_slides(inputs: Sequence[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and directories (not recursive) into slide files; missing paths are failures.
    In a directory, one file of each DICOM series folder is enough for OpenSlide: only the first."""
    found: list[Path] = []
    failures: list[tuple[str, str]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.suffix.lower() in SLIDE_SUFFIXES and not p.name.startswith(".")
            )
            dicom = [p for p in files if p.suffix.lower() == ".dcm"]
            found.extend(p for p in files if p.suffix.lower() != ".dcm")
            found.extend(dicom[:1])
        elif path.exists():
            found.append(path)
        else:
            failures.append((str(path), f"{path}: no such file or directory"))
    return found, failures


def resolve_fms(
    fms: Sequence[str | EncoderSpec],
) -> tuple[list[EncoderSpec], list[EncoderSpec], list[tuple[str, str]]]:
    """(patch specs, slide specs, failures): slide FMs bring in the patch FM they require."""
    from fusecpath.api import get_spec

    patch: dict[str, EncoderSpec] = {}
    slide: dict[str, EncoderSpec] = {}
    failures = []
    for item in fms:
        try:
            spec = item if isinstance(item, EncoderSpec) else get_spec(item)
            if spec.level == "slide":
                if spec.requires is None:
                    raise ExtractionError(
                        f"{spec.name}: a slide encoder that names no patch encoder it requires"
                    )
                required = get_spec(spec.requires)
                slide[spec.name] = spec
                patch.setdefault(required.name, required)
            else:
                patch[spec.name] = spec
        except FusecpathError as exc:
            failures.append((f"fm:{item if isinstance(item, str) else item.name}", one_line(exc)))
    return list(patch.values()), list(slide.values()), failures


def one_line(exc: BaseException) -> str:
    """One line for the user: the exception's message with its whitespace folded."""
    return " ".join(str(exc).split()) or type(exc).__name__


# ---------------------------------------------------------------------------------------------- engine

ProgressFn = Callable[[str, int, int], None]
"""``progress(label, done, total)``: label "slides" for the run, a slide id for that slide's patches."""


@dataclass(frozen=True)
class ExtractionJob:
    """What a run extracts, where, and with what: the one object the local and Ray backends share.

    Plain data (it travels to Ray actors); ``engine()`` builds the process-local machinery and
    ``extract_one(engine, path)`` extracts one slide, returning its outcome instead of raising."""

    patch_specs: tuple[EncoderSpec, ...]
    slide_specs: tuple[EncoderSpec, ...]
    out_dir: Path
    mpp: float | None = None
    device: str = "cpu"
    batch_size: int = 64
    workers: int = 0

    def validate(self) -> None:
        """Raise FusecpathError for settings that cannot work, before any slide is touched."""
        if self.batch_size < 1 or self.workers < 0:
            raise FusecpathError("--batch-size must be at least 1 and --workers at least 0")
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise FusecpathError(f"--device {self.device}: CUDA is not available here; use --device cpu")

    def engine(self, progress: ProgressFn | None = None) -> Extractor:
        return Extractor(self, progress)

    def extract_one(self, engine: Extractor, path: Path, then: Path | None = None) -> tuple[str, Any]:
        """("written" | "skipped", summary), ("busy", None) or ("failed", one-line message). ``then``:
        the slide that comes next, planned (and its reads queued) while this one is read."""
        try:
            plan = engine.take_plan(path) or engine.plan(path)
        except (FusecpathError, OSError, RuntimeError, ValueError) as exc:
            engine.prefetch(then)
            return "failed", one_line(exc)
        engine.prefetch(then)
        try:
            return extract_slide(engine, path, self, plan)
        except SlideLockedError:
            return "busy", None
        except (FusecpathError, OSError, RuntimeError, ValueError) as exc:
            return "failed", one_line(exc)


class Extractor:
    """A job's process-local machinery: reader processes started once for the run, the models (loaded
    once), and the feature writer thread. Close it (or use ``with``) to stop them."""

    def __init__(self, job: ExtractionJob, progress: ProgressFn | None = None):
        import torch

        job.validate()
        self.torch, self.job, self.progress = torch, job, progress
        self.device = torch.device(job.device)
        self.models: dict[str, Any] = {}
        self._buffers: dict[tuple, Any] = {}  # CPU: input tensors reused batch after batch
        self.readers = ReaderPool(job.workers)  # forked before models load and threads start
        self.writer = FeatureWriter()
        self._planner = ThreadPoolExecutor(1, thread_name_prefix="fusecpath-planner")
        self._planned: tuple[Path, Future] | None = None
        self._threads = torch.get_num_threads()
        torch.set_num_threads(compute_threads(job.workers, self._threads))

    def close(self) -> None:
        self.prefetch(None)
        self._planner.shutdown()
        self.writer.close()
        self.readers.close()
        self.torch.set_num_threads(self._threads)

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def plan(self, path: Path) -> SlidePlan:
        """Plan ``path`` (no lock taken), queue its reads, then render its tissue files while the
        readers start on them."""
        from fusecpath.slides.tissue import render_tissue

        job = self.job
        plan = plan_slide(path, job.out_dir, job.patch_specs, job.slide_specs, job.mpp)
        if plan.groups:
            geometries = [g.geometry for g in plan.groups]
            plan.ticket = self.readers.submit(path, plan.slide_mpp, plan.coords, geometries, job.batch_size)
        if plan.tissue is not None:
            try:
                plan.tissue_files = render_tissue(plan.tissue, slide_id(path))
            except BaseException:
                if plan.ticket is not None:
                    self.readers.cancel(plan.ticket)
                raise
        return plan

    def prefetch(self, path: Path | None) -> None:
        """Plan ``path`` in the background (None: forget the one planned ahead, cancelling its reads)."""
        if self._planned is not None:
            self._planned[1].add_done_callback(self._cancel)
            self._planned = None
        if path is not None:
            self._planned = (path, self._planner.submit(self.plan, path))

    def take_plan(self, path: Path) -> SlidePlan | None:
        """The plan made ahead for ``path`` (raising what planning raised), else None."""
        if self._planned is None or self._planned[0] != path:
            return None
        future, self._planned = self._planned[1], None
        return future.result()

    def _cancel(self, future: Future) -> None:
        if future.exception() is None and future.result().ticket is not None:
            self.readers.cancel(future.result().ticket)

    def model(self, spec: EncoderSpec):
        if spec.name not in self.models:
            from fusecpath.api import load_encoder

            self.models[spec.name] = load_encoder(spec, device=str(self.device))
        return self.models[spec.name]

    def autocast(self, spec: EncoderSpec):
        if self.device.type != "cuda" or spec.precision == "fp32":
            return contextlib.nullcontext()
        dtype = {"fp16": self.torch.float16, "bf16": self.torch.bfloat16}[spec.precision]
        return self.torch.autocast("cuda", dtype=dtype)

    def embed_patches(self, plan: SlidePlan, out: h5py.File, label: str) -> None:
        """Stream every group's FMs' features of the plan's patches (its reader ticket) into
        ``patch/<fm>`` datasets of ``out``."""
        groups, n = plan.groups, len(plan.coords)
        datasets = {}
        for group in groups:
            for spec in group.specs:
                self.model(spec)
                rows = max(1, min(n, CHUNK_BYTES // (4 * spec.embed_dim)))
                datasets[spec.name] = out.create_dataset(
                    f"patch/{spec.name}",
                    shape=(n, spec.embed_dim),
                    dtype="float32",
                    chunks=(rows, spec.embed_dim),
                )
        batches = self.readers.results(plan.ticket)
        done = 0
        self._report(label, 0, n)
        try:
            with self.torch.inference_mode():
                for start, batch in batches:
                    for group, pixels in zip(groups, batch, strict=True):
                        self._embed_group(group, self._upload(pixels), datasets, start)
                    done += len(batch[0])
                    self._report(label, done, n)
            self.writer.flush()
        except BaseException:
            self.writer.discard()
            raise
        for group in groups:
            for spec in group.specs:
                datasets[spec.name].attrs.update(_fm_attrs(spec, group))

    def _upload(self, pixels):
        """uint8 pixels out of the readers' shared memory onto the device: pinned and non-blocking on
        CUDA; on the CPU they are used where they are (the readers' slots stay mapped, batch after batch)."""
        if self.device.type == "cuda":
            return pixels.pin_memory().to(self.device, non_blocking=True)
        return pixels

    def _buffer(self, key: tuple, like, shape=None, dtype=None):
        """A CPU tensor kept for ``key``, grown to ``shape`` (default: like's) and cut to it."""
        shape = tuple(shape or like.shape)
        dtype = dtype or like.dtype
        held = self._buffers.get(key)
        if held is None or held.shape[1:] != shape[1:] or held.dtype != dtype or len(held) < shape[0]:
            held = self._buffers[key] = self.torch.empty(shape, dtype=dtype)
        return held[: shape[0]]

    def _embed_group(self, group: ReadGroup, pixels, datasets: dict[str, h5py.Dataset], start: int) -> None:
        """Each FM of the group embeds the same pixels; FMs with the same preprocessing share its output."""
        from fusecpath.encoders.preprocess import preprocess

        inputs: dict[tuple, Any] = {}
        for spec in group.specs:
            key = (spec.input_px, spec.resize_px, spec.crop, spec.interpolation, spec.mean, spec.std)
            if key not in inputs:
                out = None
                if self.device.type == "cpu":
                    side = spec.input_px
                    out = self._buffer(
                        ("input", *key), pixels, (len(pixels), 3, side, side), self.torch.float32
                    )
                inputs[key] = preprocess(pixels, spec, out=out)
            with self.autocast(spec):
                features = self.model(spec)(inputs[key])
            features = features.float().reshape(len(pixels), -1)
            if features.shape[1] != spec.embed_dim:
                raise ExtractionError(
                    f"{spec.name}: the model gives {features.shape[1]} features, its spec says "
                    f"{spec.embed_dim}; the plugin is wrong"
                )
            self.writer.put(datasets[spec.name], start, features)

    def _report(self, label: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(label, done, total)

    def embed_slide(self, spec: EncoderSpec, out: h5py.File) -> None:
        torch = self.torch
        features = torch.from_numpy(out[f"patch/{spec.requires}"][()]).to(self.device)
        coords = torch.from_numpy(out["coords"][()]).to(self.device)
        with torch.inference_mode(), self.autocast(spec):
            embedding = self.model(spec)(features, coords)
        embedding = embedding.float().reshape(-1).cpu().numpy()
        if embedding.shape[0] != spec.embed_dim:
            raise ExtractionError(
                f"{spec.name}: the model gives {embedding.shape[0]} features, "
                f"its spec says {spec.embed_dim}; the plugin is wrong"
            )
        name = f"slide/{spec.name}"
        if name in out:
            del out[name]
        dataset = out.create_dataset(name, data=embedding)
        dataset.attrs.update(
            fingerprint=spec.fingerprint(),
            embed_dim=spec.embed_dim,
            requires=spec.requires,
            requires_fingerprint=out[f"patch/{spec.requires}"].attrs["fingerprint"],
        )


def compute_threads(workers: int, current: int) -> int:
    """Torch's intra-op threads for the run's process: the cores the reader processes leave free (at
    least one). Threads that spin on a core a reader needs slow both; measured in benchmarks/extract.py."""
    if not workers:
        return current
    return max(1, min(current, len(os.sched_getaffinity(0)) - workers))


def _fm_attrs(spec: EncoderSpec, group: ReadGroup) -> dict[str, Any]:
    return {
        "fingerprint": spec.fingerprint(),
        "embed_dim": spec.embed_dim,
        "source": spec.source,
        "mpp": group.mpp,
        "read_px": group.read_px,
        "read_size_level0": group.size_level0,
        "read_offset_level0": group.offset,
        "precision": spec.precision,
    }


def extract_slide(
    engine: Extractor, path: Path, job: ExtractionJob, plan: SlidePlan | None = None
) -> tuple[str, dict[str, Any]]:
    """Extract what is missing for one slide, under its lock: ("written" | "skipped", summary). A plan
    made ahead is used when the slide and its feature file are still as it was made from."""
    from fusecpath.slides.tissue import write_tissue

    started = time.perf_counter()
    sid = slide_id(path)
    target = feature_path(job.out_dir, sid)
    try:
        with slide_lock(target):
            with open_slide(path, mpp=job.mpp) as slide:
                if plan is None or slide_state(path, target, slide.mpp)[0] != plan.state:
                    if plan is not None:
                        engine.readers.cancel(plan.ticket)
                    plan = engine.plan(path)
                summary = {
                    "slide_id": sid,
                    "path": str(path),
                    "features": str(target),
                    "fms": [s.name for s in plan.todo_patch + plan.todo_slide],
                }
                if not plan.todo:
                    return "skipped", {**summary, "patches": plan.patches}
                drop = [f"patch/{s.name}" for s in plan.todo_patch]
                drop += [f"slide/{s.name}" for s in plan.todo_slide]
                with updating(target, drop=drop, fresh=plan.stored is None, lock=False) as out:
                    if plan.stored is None:
                        _write_coords(out, slide, sid, plan.coords, plan.grid, plan.state[0], plan.tissue)
                    if plan.groups:
                        engine.embed_patches(plan, out, sid)
                    for spec in plan.todo_slide:
                        engine.embed_slide(spec, out)
    finally:
        if plan is not None and plan.ticket is not None:
            engine.readers.cancel(plan.ticket)
    if plan.tissue_files is not None:
        write_tissue(plan.tissue_files, job.out_dir / "tissue")
    summary.update(patches=plan.patches, seconds=round(time.perf_counter() - started, 3))
    return "written", summary


def _write_coords(
    out: h5py.File,
    slide: Slide,
    sid: str,
    coords: np.ndarray,
    grid: tuple[float, int, float],
    checksum: str,
    tissue,
) -> None:
    from fusecpath import __version__

    out.attrs.update(format=FORMAT, version=VERSION, slide_id=sid, created_by=f"fusecpath {__version__}")
    dataset = out.create_dataset("coords", data=np.asarray(coords, dtype=np.int64).reshape(-1, 2))
    width, height = slide.dimensions
    dataset.attrs.update(
        mpp=grid[0],
        read_px=grid[1],
        patch_size_level0=int(round(grid[2])),
        patch_size_level0_exact=grid[2],
        slide_mpp=slide.mpp,
        mpp_source=slide.mpp_source,
        slide_width=width,
        slide_height=height,
        slide_checksum=checksum,
        slide_path=str(slide.path),
        vendor=slide.vendor,
        level_count=slide.level_count,
        tissue_threshold=tissue.threshold if tissue is not None else -1.0,
        name=sid,
    )


def _logged(label: str, done: int, total: int) -> None:
    """``progress=True``: progress as log records (INFO a slide, DEBUG a batch)."""
    (log.info if label == "slides" else log.debug)("%s: %d/%d", label, done, total)


def extract(
    slides: Sequence[str | Path],
    fms: Sequence[str | EncoderSpec],
    out: str | Path,
    *,
    mpp: float | None = None,
    workers: int = 0,
    device: str = "cpu",
    batch_size: int = 64,
    progress: ProgressFn | bool | None = None,
    shard: str | None = None,
    backend: str = "local",
    address: str | None = None,
    ray_workers: int = 2,
) -> ExtractionResult:
    """Extract the features of every FM in ``fms`` for every slide (files or directories) into
    ``out``: one HDF5 file a slide, named by the slide's file stem. ``mpp`` is used for slides whose
    file does not say its microns per pixel. Bad slides are recorded in ``failures`` and the others
    go on; slides already stored with the same FM fingerprints are skipped.

    ``workers`` reader processes read patches for the whole run. ``progress(label, done, total)`` is
    called as slides ("slides") and each slide's patches (label: the slide id) advance; ``True`` sends
    progress to ``logging`` instead. ``shard="I/N"`` takes only shard I of N of the slides (job
    arrays). ``backend="ray"`` runs the slides on ``ray_workers`` Ray actors (a cluster at
    ``address``, else a local one)."""
    from fusecpath.shards import take_shard

    if backend not in ("local", "ray"):
        raise FusecpathError(f"--backend {backend!r}: use 'local' or 'ray'")
    report_progress = _logged if progress is True else (progress or None)
    out_dir = Path(out)
    result = ExtractionResult()
    paths, missing = find_slides(slides)
    paths = take_shard(paths, shard)
    result.failures.extend(missing)
    patch_specs, slide_specs, fm_failures = resolve_fms(fms)
    result.failures.extend(fm_failures)
    if not patch_specs and not slide_specs:
        if not fm_failures:
            result.failures.append(("fm:", "no FM named; pass --fms, e.g. --fms hed-stain,gabor-texture"))
        return result
    job = ExtractionJob(tuple(patch_specs), tuple(slide_specs), out_dir, mpp, device, batch_size, workers)
    job.validate()
    out_dir.mkdir(parents=True, exist_ok=True)
    seen: dict[str, Path] = {}
    unique = []
    for path in paths:
        sid = slide_id(path)
        if sid in seen:
            result.failures.append(
                (
                    str(path),
                    f"{path.name}: slide id {sid!r} is also {seen[sid].name}; "
                    "rename one (ids are file names without suffix)",
                )
            )
        else:
            seen[sid] = path
            unique.append(path)
    finished = 0

    def record(path: Path, status: str, detail: Any) -> None:
        """One slide's outcome: written/skipped (detail: summary), busy, or failed (detail: message)."""
        nonlocal finished
        target = feature_path(out_dir, slide_id(path))
        if status in ("written", "skipped"):
            (result.written if status == "written" else result.skipped).append(target)
            result.slides.append({**detail, "status": status})
        elif status == "busy":
            result.busy.append(target)
        else:
            result.failures.append((str(path), detail))
        finished += 1
        if report_progress:
            report_progress("slides", finished, len(unique))

    if report_progress:
        report_progress("slides", 0, len(unique))
    if backend == "ray":
        from fusecpath.features.ray_backend import run_on_ray

        run_on_ray(job, unique, address=address, actors=ray_workers, report=record)
        return result
    if unique:
        with job.engine(report_progress) as engine:
            for i, path in enumerate(unique):
                record(
                    path, *job.extract_one(engine, path, then=unique[i + 1] if i + 1 < len(unique) else None)
                )
    return result
