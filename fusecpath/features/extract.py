"""One-pass multi-FM extraction: each slide is read once and every chosen FM embeds the same patches.

Per slide: find tissue, tile it on one grid (kept from the feature file when there is one, else the
read geometry of the first patch FM), read every patch once per read geometry in DataLoader workers,
let each FM of that geometry preprocess and embed the same pixels, stream the features into a
temporary HDF5 file and rename it into place. Slide FMs are computed from the stored features of the
patch FM they require, which is extracted as well when missing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fusecpath.errors import FusecpathError
from fusecpath.features.store import (
    FORMAT,
    VERSION,
    SlideLockedError,
    StoreError,
    feature_path,
    open_features,
    slide_lock,
    updating,
)
from fusecpath.slides.reader import Slide, open_slide, quick_checksum, slide_id
from fusecpath.zoo import EncoderSpec

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


class ExtractionError(FusecpathError):
    """A slide that cannot be extracted (no tissue, nothing to do, ...)."""


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
            failures.append((f"fm:{item if isinstance(item, str) else item.name}", _one_line(exc)))
    return list(patch.values()), list(slide.values()), failures


def _one_line(exc: BaseException) -> str:
    """One line for the user: the original message, even from a DataLoader worker's wrapped error."""
    text = str(exc).strip()
    if "Original Traceback" in text:  # torch re-raises worker errors with the traceback in the message
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].endswith("Error") else last
    return " ".join(text.split()) or type(exc).__name__


# ---------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ReadGroup:
    """Patch FMs sharing one read geometry, and where each patch is read at level 0."""

    mpp: float
    read_px: int
    size_level0: float  # side of the read square at level 0
    offset: float  # added to the grid coords (centres the read square on the grid tile)
    specs: tuple[EncoderSpec, ...]


class PatchDataset:
    """Index i -> one uint8 (read_px, read_px, 3) array per read group, for grid patch i.

    The slide is opened lazily, once in each DataLoader worker."""

    def __init__(self, path: Path, mpp: float, coords: np.ndarray, groups: Sequence[ReadGroup]):
        self.path, self.mpp, self.coords = path, mpp, coords
        self.groups = [(g.offset, g.size_level0, g.read_px) for g in groups]
        self._slide: Slide | None = None

    def __len__(self) -> int:
        return len(self.coords)

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        if self._slide is None:
            self._slide = open_slide(self.path, mpp=self.mpp)
        x, y = self.coords[index]
        return tuple(self._slide.read_patch(x + off, y + off, size, px) for off, size, px in self.groups)


def _loader(dataset: PatchDataset, batch_size: int, workers: int, pin: bool):
    from torch.utils.data import DataLoader

    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin,
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )


# ---------------------------------------------------------------------------------------------- engine


class Extractor:
    """Holds the models (loaded once a run) and extracts one slide at a time."""

    def __init__(self, device: str, batch_size: int, workers: int, progress):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise FusecpathError(f"--device {device}: CUDA is not available here; use --device cpu")
        if batch_size < 1 or workers < 0:
            raise FusecpathError("--batch-size must be at least 1 and --workers at least 0")
        self.batch_size, self.workers, self.progress = batch_size, workers, progress
        self.models: dict[str, Any] = {}

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

    def embed_patches(
        self,
        slide_path: Path,
        mpp: float,
        coords: np.ndarray,
        groups: list[ReadGroup],
        out: h5py.File,
        label: str,
    ) -> None:
        """Stream every group's FMs' features of ``coords`` into ``patch/<fm>`` datasets of ``out``."""
        from fusecpath.encoders.preprocess import preprocess, to_float

        torch = self.torch
        n = len(coords)
        datasets = {}
        for group in groups:
            for spec in group.specs:
                self.model(spec)  # load before the workers start
                rows = max(1, min(n, CHUNK_BYTES // (4 * spec.embed_dim)))
                datasets[spec.name] = out.create_dataset(
                    f"patch/{spec.name}",
                    shape=(n, spec.embed_dim),
                    dtype="float32",
                    chunks=(rows, spec.embed_dim),
                )
        loader = _loader(
            PatchDataset(slide_path, mpp, coords, groups),
            self.batch_size,
            self.workers,
            self.device.type == "cuda",
        )
        task = self.progress.add_task(label, total=n) if self.progress else None
        start = 0
        with torch.inference_mode():
            for batch in loader:
                size = len(batch[0])
                for group, pixels in zip(groups, batch, strict=True):
                    # decoded once, converted to float once; each FM resizes/normalises this (unchanged) tensor
                    pixels = to_float(pixels.to(self.device, non_blocking=True))
                    for spec in group.specs:
                        with self.autocast(spec):
                            features = self.model(spec)(preprocess(pixels, spec))
                        features = features.float().reshape(size, -1)
                        if features.shape[1] != spec.embed_dim:
                            raise ExtractionError(
                                f"{spec.name}: the model gives {features.shape[1]} features, its spec says "
                                f"{spec.embed_dim}; the plugin is wrong"
                            )
                        datasets[spec.name][start : start + size] = features.cpu().numpy()
                start += size
                if task is not None:
                    self.progress.advance(task, size)
        if task is not None:
            self.progress.remove_task(task)
        for group in groups:
            for spec in group.specs:
                datasets[spec.name].attrs.update(_fm_attrs(spec, group))

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


def _plan_groups(specs: list[EncoderSpec], slide_mpp: float, grid_size: float) -> list[ReadGroup]:
    """Group patch FMs by read geometry; each group's square is centred on the grid tile."""
    groups: dict[tuple[float, int], list[EncoderSpec]] = {}
    for spec in specs:
        if spec.read_geometry is None:
            raise ExtractionError(f"{spec.name}: a patch encoder without mpp/read_px in its spec")
        groups.setdefault(spec.read_geometry, []).append(spec)
    out = []
    for (mpp, read_px), members in groups.items():
        size = read_px * mpp / slide_mpp
        out.append(ReadGroup(mpp, read_px, size, (grid_size - size) / 2.0, tuple(members)))
    return out


def _stored_state(
    path: Path, checksum: str, slide_mpp: float
) -> tuple[dict[str, str], dict[str, str], dict | None]:
    """(patch fm -> fingerprint, slide fm -> fingerprint, coords attrs) of a stored file that belongs
    to this very slide; empty when there is none, it is unreadable or the slide changed."""
    if not path.exists():
        return {}, {}, None
    try:
        stored = open_features(path)
        if stored.format != "fusecpath" or stored.attrs.get("slide_checksum") != checksum:
            return {}, {}, None
        if not np.isclose(float(stored.attrs.get("slide_mpp", -1)), slide_mpp) or not len(stored.coords):
            return {}, {}, None
        if not all(k in stored.attrs for k in ("mpp", "read_px", "patch_size_level0_exact")):
            return {}, {}, None
        patch = {fm: stored.fingerprint(fm) for fm in stored.patch_fms()}
        slide = {fm: stored.fingerprint(fm) for fm in stored.slide_fms()}
        return patch, slide, {**stored.attrs, "_coords": stored.coords}
    except (StoreError, OSError, KeyError, ValueError, TypeError):
        return {}, {}, None


def extract_slide(
    engine: Extractor,
    path: Path,
    patch_specs: list[EncoderSpec],
    slide_specs: list[EncoderSpec],
    out_dir: Path,
    mpp: float | None,
) -> tuple[str, dict[str, Any]]:
    """Extract what is missing for one slide, under its lock: ("written" | "skipped", summary)."""
    from fusecpath.slides.tiling import tile_tissue
    from fusecpath.slides.tissue import save_tissue, segment_tissue

    started = time.perf_counter()
    sid = slide_id(path)
    target = feature_path(out_dir, sid)
    with slide_lock(target):
        with open_slide(path, mpp=mpp) as slide:
            checksum = quick_checksum(path)
            stored_patch, stored_slide, stored = _stored_state(target, checksum, slide.mpp)
            todo_patch = [s for s in patch_specs if stored_patch.get(s.name) != s.fingerprint()]
            redone = {s.name for s in todo_patch}
            todo_slide = [
                s for s in slide_specs if stored_slide.get(s.name) != s.fingerprint() or s.requires in redone
            ]
            summary = {
                "slide_id": sid,
                "path": str(path),
                "features": str(target),
                "fms": [s.name for s in todo_patch + todo_slide],
            }
            if not todo_patch and not todo_slide:
                return "skipped", {**summary, "patches": len(stored["_coords"]) if stored else 0}
            tissue = None
            if stored is not None:
                coords = stored["_coords"]
                grid = (
                    float(stored["mpp"]),
                    int(stored["read_px"]),
                    float(stored["patch_size_level0_exact"]),
                )
            else:
                first = todo_patch[0]
                tissue = segment_tissue(slide)
                tiling = tile_tissue(slide, tissue, first.mpp, first.read_px)
                if len(tiling) == 0:
                    raise ExtractionError(
                        f"{path.name}: no tissue found (tissue covers {tissue.area_fraction:.1%} of the "
                        f"thumbnail, too little for one {first.read_px}-px patch at {first.mpp} µm/px); "
                        "check the slide or its mpp"
                    )
                coords, grid = tiling.coords, (tiling.mpp, tiling.read_px, tiling.size_level0)
            groups = _plan_groups(todo_patch, slide.mpp, grid[2])
            drop = [f"patch/{s.name}" for s in todo_patch] + [f"slide/{s.name}" for s in todo_slide]
            with updating(target, drop=drop, fresh=stored is None, lock=False) as out:
                if stored is None:
                    _write_coords(out, slide, sid, coords, grid, checksum, tissue)
                if groups:
                    engine.embed_patches(path, slide.mpp, coords, groups, out, sid)
                for spec in todo_slide:
                    engine.embed_slide(spec, out)
            if tissue is not None:
                save_tissue(tissue, sid, out_dir / "tissue")
    summary.update(patches=int(len(coords)), seconds=round(time.perf_counter() - started, 3))
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


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        yield progress


def extract(
    slides: Sequence[str | Path],
    fms: Sequence[str | EncoderSpec],
    out: str | Path,
    *,
    mpp: float | None = None,
    workers: int = 0,
    device: str = "cpu",
    batch_size: int = 64,
    progress: bool = True,
    shard: str | None = None,
    backend: str = "local",
    address: str | None = None,
    ray_workers: int = 2,
) -> ExtractionResult:
    """Extract the features of every FM in ``fms`` for every slide (files or directories) into
    ``out``: one HDF5 file a slide, named by the slide's file stem. ``mpp`` is used for slides whose
    file does not say its microns per pixel. Bad slides are recorded in ``failures`` and the others
    go on; slides already stored with the same FM fingerprints are skipped.

    ``shard="I/N"`` takes only shard I of N of the slides (job arrays). ``backend="ray"`` runs the
    slides on ``ray_workers`` Ray actors (a cluster at ``address``, else a local one)."""
    from fusecpath.shards import take_shard

    if backend not in ("local", "ray"):
        raise FusecpathError(f"--backend {backend!r}: use 'local' or 'ray'")
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
    with _progress(progress) as bar:
        cohort = bar.add_task("slides", total=len(unique)) if bar else None

        def record(path: Path, status: str, detail: Any) -> None:
            """One slide's outcome: written/skipped (detail: summary), busy, or failed (detail: message)."""
            target = feature_path(out_dir, slide_id(path))
            if status in ("written", "skipped"):
                (result.written if status == "written" else result.skipped).append(target)
                result.slides.append({**detail, "status": status})
            elif status == "busy":
                result.busy.append(target)
            else:
                result.failures.append((str(path), detail))
            if bar:
                bar.advance(cohort)

        if backend == "ray":
            from fusecpath.features.ray_backend import run_on_ray

            run_on_ray(
                unique,
                patch_specs,
                slide_specs,
                out_dir,
                mpp,
                address=address,
                actors=ray_workers,
                device=device,
                batch_size=batch_size,
                loader_workers=workers,
                report=record,
            )
            return result
        engine = Extractor(device, batch_size, workers, bar)
        for path in unique:
            try:
                record(path, *extract_slide(engine, path, patch_specs, slide_specs, out_dir, mpp))
            except SlideLockedError:
                record(path, "busy", None)
            except (FusecpathError, OSError, RuntimeError, ValueError) as exc:
                record(path, "failed", _one_line(exc))
    return result
