"""TRIDENT job folders, read as they are (never written).

TRIDENT (mahmoodlab/TRIDENT) writes one folder per patching run, named
``<mag>x_<patch_size>px_<overlap>px_overlap`` (e.g. ``20x_256px_0px_overlap``), inside its job folder::

    <job>/20x_256px_0px_overlap/
        patches/<slide>_patches.h5            coords (N, 2) int64 at level 0
        features_<encoder>/<slide>.h5         features (N, D) float32 + coords (N, 2)
        slide_features_<encoder>/<slide>.h5   features (D,) float32 + coords (N, 2)
        _config_*.json, _logs_*.txt, visualization/

``coords`` carries TRIDENT's patching attributes (``patch_size``, ``patch_size_level0``,
``level0_magnification``, ``target_magnification``, ``overlap``, ``name``, ``level0_width``,
``level0_height``, ``savetodir``); a patch ``features`` dataset carries ``name``, ``savetodir`` and
``encoder``. Every FM of a slide lives in its own file; all of them must hold the same coords.

Encoder names are TRIDENT's (``uni_v1``, ``conch_v15``, ``virchow2``, ...); they are mapped to this
zoo's names by :data:`TRIDENT_TO_ZOO` (patch encoders and the slide encoders whose name is not also a
patch encoder's) and :data:`TRIDENT_SLIDE_TO_ZOO` (every slide encoder: TRIDENT's ``gigapath`` is the
tile encoder under ``features_`` and the slide encoder under ``slide_features_``); TRIDENT's
``mean-<encoder>`` slide encoders are the zoo's ``mean-<fm>``. A folder named with a zoo name or alias
is taken as that model. A folder whose encoder the zoo does not know (``gemma4-*``, ``custom_encoder``,
...) is skipped with one
:class:`TridentWarning` naming it; ``fusecpath features ls`` lists it as unmapped. Features whose
width differs from the zoo model's ``embed_dim`` are refused with a one-line error, since the fused
model is built from the zoo's widths. Features saved as ``.pt`` are not read (h5 only).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fusecpath.features.store import SlideFeatures, StoreError, _plain_attrs, lock_path

# TRIDENT encoder name -> zoo name (trident/patch_encoder_models/load.py: encoder_registry, and the
# slide encoders of trident/slide_encoder_models/load.py that do not share a patch encoder's name).
TRIDENT_TO_ZOO: dict[str, str] = {
    "uni_v1": "uni",
    "uni_v2": "uni2-h",
    "conch_v1": "conch",
    "conch_v15": "conch-v1.5",
    "virchow": "virchow",
    "virchow2": "virchow2",
    "gigapath": "prov-gigapath",
    "hoptimus0": "h-optimus-0",
    "hoptimus1": "h-optimus-1",
    "h0-mini": "h0-mini",
    "phikon": "phikon",
    "phikon_v2": "phikon-v2",
    "musk": "musk",
    "hibou_l": "hibou-l",
    "kaiko-vits8": "kaiko-vits8",
    "kaiko-vits16": "kaiko-vits16",
    "kaiko-vitb8": "kaiko-vitb8",
    "kaiko-vitb16": "kaiko-vitb16",
    "kaiko-vitl14": "kaiko-vitl14",
    "lunit-vits8": "lunit-vits8",
    "ctranspath": "ctranspath",
    "resnet50": "resnet50-trunc",
    "keep": "keep",
    "gpfm": "gpfm",
    "openmidnight": "openmidnight",
    "genbio-pathfm": "genbio-pathfm",
    "midnight12k": "midnight-cls",  # TRIDENT's default return type is the CLS token (1536); see _by_width
    "titan": "titan",
    "prism": "prism",
    "chief": "chief",
    "madeleine": "madeleine",
    "feather": "feather-conch-v1.5",
    "feather_uni_v2": "feather-uni2-h",
    "care": "care",
}

# TRIDENT slide encoder name -> zoo name (``slide_features_<encoder>`` folders).
TRIDENT_SLIDE_TO_ZOO: dict[str, str] = {
    "titan": "titan",
    "prism": "prism",
    "chief": "chief",
    "gigapath": "prov-gigapath-slide",
    "madeleine": "madeleine",
    "feather": "feather-conch-v1.5",
    "feather_uni_v2": "feather-uni2-h",
    "care": "care",
}

# Encoders whose TRIDENT output width depends on a return-type option: width -> zoo name.
_BY_WIDTH: dict[str, dict[int, str]] = {"midnight12k": {1536: "midnight-cls", 3072: "midnight"}}

_COORDS_DIR = re.compile(r"^[\d.]+x_\d+px_\d+px_overlap$")
_PATCH_PREFIX, _SLIDE_PREFIX = "features_", "slide_features_"


class TridentWarning(UserWarning):
    """A TRIDENT encoder folder that is skipped because the zoo has no model of that name."""


@dataclass(frozen=True)
class EncoderFolder:
    """One ``features_<encoder>`` or ``slide_features_<encoder>`` folder of a job."""

    path: Path
    level: str  # "patch" or "slide"
    encoder: str  # TRIDENT's name
    zoo: str | None  # the zoo's name, None when unmapped


def zoo_name(encoder: str, level: str = "patch") -> str | None:
    """The zoo name of a TRIDENT encoder at ``level`` ("patch" or "slide"), or None if unknown."""
    from fusecpath.errors import UnknownModelError
    from fusecpath.plugins import get_registry

    table = TRIDENT_SLIDE_TO_ZOO if level == "slide" else TRIDENT_TO_ZOO
    name = table.get(encoder, encoder)
    if level == "slide" and encoder.startswith("mean-") and encoder[5:] in TRIDENT_TO_ZOO:
        name = f"mean-{TRIDENT_TO_ZOO[encoder[5:]]}"  # TRIDENT's mean-<patch encoder>
    try:
        spec = get_registry().get(name)
    except UnknownModelError:
        return None
    return spec.name if spec.level == level else None


def _is_coords_dir(path: Path) -> bool:
    return path.is_dir() and any(
        p.is_dir() and p.name.startswith((_PATCH_PREFIX, _SLIDE_PREFIX)) for p in path.iterdir()
    )


def coords_dir(path: str | Path) -> Path:
    """The folder holding the ``features_*`` folders: ``path`` itself, or the one
    ``<mag>x_<px>px_<overlap>px_overlap`` folder inside a TRIDENT job folder."""
    path = Path(path)
    if _is_coords_dir(path):
        return path
    if not path.is_dir():
        raise StoreError(f"{path}: no such directory")
    runs = sorted(p for p in path.iterdir() if _COORDS_DIR.match(p.name) and _is_coords_dir(p))
    if len(runs) == 1:
        return runs[0]
    if runs:
        raise StoreError(
            f"{path}: a TRIDENT job with {len(runs)} patching runs ({', '.join(p.name for p in runs)}); "
            "pass one of them"
        )
    raise StoreError(f"{path}: not a TRIDENT job folder (no features_<encoder>/ folders)")


def is_trident_job(path: str | Path) -> bool:
    """Whether ``path`` is a TRIDENT patching-run folder with ``features_*/`` folders, or a job folder
    holding such runs."""
    path = Path(path)
    if not path.is_dir():
        return False
    return _is_coords_dir(path) or any(
        _COORDS_DIR.match(p.name) and _is_coords_dir(p) for p in path.iterdir()
    )


def encoder_folders(job_dir: str | Path, warn: bool = True) -> list[EncoderFolder]:
    """Every encoder folder of a job, patch folders first; unmapped ones get ``zoo=None`` (and a
    TridentWarning when ``warn``)."""
    root = coords_dir(job_dir)
    folders = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        for prefix, level in ((_SLIDE_PREFIX, "slide"), (_PATCH_PREFIX, "patch")):
            if sub.name.startswith(prefix) and len(sub.name) > len(prefix):
                encoder = sub.name[len(prefix) :]
                folders.append(EncoderFolder(sub, level, encoder, zoo_name(encoder, level)))
                break
    unmapped = [f.path.name for f in folders if f.zoo is None]
    if warn and unmapped:
        warnings.warn(
            f"{root}: skipping {', '.join(unmapped)}: no zoo model of that name "
            "(`fusecpath models list --all` shows the zoo)",
            TridentWarning,
            stacklevel=2,
        )
    return sorted(folders, key=lambda f: (f.level != "patch", f.path.name))


def _slide_files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in folder.glob("*.h5") if not p.name.startswith(".")}


def trident_slide_ids(job_dir: str | Path, fms: list[str] | None = None) -> list[str]:
    """The slides of a job: those with features of any mapped encoder, or, given zoo names ``fms``,
    those with features of every one of them."""
    folders = [f for f in encoder_folders(job_dir) if f.zoo is not None]
    if fms is None:
        return sorted({sid for f in folders for sid in _slide_files(f.path)})
    from fusecpath.plugins import get_registry

    registry = get_registry()
    ids: set[str] | None = None
    for fm in (registry.resolve(name) for name in fms):
        have = {sid for f in folders if f.zoo == fm for sid in _slide_files(f.path)}
        ids = have if ids is None else ids & have
    return sorted(ids or ())


def _check_width(path: Path, encoder: str, zoo: str, width: int) -> str:
    """The zoo name for ``encoder``'s features of ``width``; a one-line error when they do not fit."""
    if encoder in _BY_WIDTH:
        if width in _BY_WIDTH[encoder]:
            return _BY_WIDTH[encoder][width]
    from fusecpath.plugins import get_registry

    expected = get_registry().get(zoo).embed_dim
    if width != expected:
        raise StoreError(
            f"{path}: {width}-wide {encoder} features, but the zoo's {zoo} gives {expected}; "
            "re-extract them with TRIDENT's default settings or `fusecpath extract`"
        )
    return zoo


def _derived_attrs(coords_attrs: dict[str, Any]) -> dict[str, Any]:
    """The store's geometry attributes (mpp, read_px) from TRIDENT's magnification and patch size."""
    out: dict[str, Any] = {}
    mag, size = coords_attrs.get("target_magnification"), coords_attrs.get("patch_size")
    try:
        out["mpp"] = 10.0 / float(mag)  # TRIDENT's convention: 20x = 0.5 µm/px
    except (TypeError, ValueError, ZeroDivisionError):
        pass
    if isinstance(size, int | np.integer | float) and not isinstance(size, bool):
        out["read_px"] = int(size)
    return out


def open_trident_slide(job_dir: str | Path, slide_id: str) -> SlideFeatures:
    """One slide of a TRIDENT job as a read-only :class:`SlideFeatures` under zoo FM names.

    ``path`` is the slide's first patch-feature file; ``file_of(fm)`` gives each FM's own file.
    """
    folders = [f for f in encoder_folders(job_dir) if f.zoo is not None]
    patch: dict[str, str] = {}
    slide: dict[str, str] = {}
    files: dict[str, Path] = {}
    coords: np.ndarray | None = None
    coords_from: Path | None = None
    root_attrs: dict[str, Any] = {}
    coords_attrs: dict[str, Any] = {}
    for folder in folders:
        path = folder.path / f"{slide_id}.h5"
        if not path.is_file():
            continue
        if lock_path(path).exists():
            raise StoreError(
                f"{path}: TRIDENT is still writing it ({lock_path(path).name}); wait for the job, "
                "or delete the lock if that job died"
            )
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise StoreError(f"{path}: not a readable HDF5 file ({exc})") from exc
        with f:
            features = f.get("features")
            if not isinstance(features, h5py.Dataset):
                raise StoreError(f"{path}: no features dataset; not a TRIDENT feature file")
            width = int(features.shape[-1]) if features.ndim else 0
            zoo = _check_width(path, folder.encoder, folder.zoo, width)  # type: ignore[arg-type]
            table = patch if folder.level == "patch" else slide
            if zoo in table:
                raise StoreError(f"{path}: {zoo} features also in {files[zoo]}; keep one folder per FM")
            here = f.get("coords")
            if folder.level == "patch":
                if not isinstance(here, h5py.Dataset):
                    raise StoreError(f"{path}: patch features without coords; the file is incomplete")
                here_coords = np.asarray(here[()]).reshape(-1, 2).astype(np.int64)
                if features.ndim != 2 or len(here_coords) != features.shape[0]:
                    raise StoreError(
                        f"{path}: features {features.shape} do not match {len(here_coords)} coords"
                    )
                if coords is None:
                    coords, coords_from = here_coords, path
                    coords_attrs = _plain_attrs(here.attrs)
                    root_attrs = _plain_attrs(f.attrs)
                elif not np.array_equal(coords, here_coords):
                    raise StoreError(
                        f"{path}: its coords differ from {coords_from}; the FMs were run on different "
                        "patchings and cannot be fused"
                    )
            elif coords is None and isinstance(here, h5py.Dataset) and not coords_attrs:
                coords_attrs = _plain_attrs(here.attrs)
            table[zoo] = "features"
            files[zoo] = path
    if not files:
        raise StoreError(f"{coords_dir(job_dir)}: no features of slide {slide_id!r}")
    if coords is None:  # slide features only: their coords say where the patches were
        first = files[next(iter(slide))]
        with h5py.File(first, "r") as f:
            here = f.get("coords")
            coords = np.zeros((0, 2), np.int64)
            if isinstance(here, h5py.Dataset):
                coords = np.asarray(here[()]).reshape(-1, 2).astype(np.int64)
    attrs = {**_derived_attrs(coords_attrs), **root_attrs, **coords_attrs}
    attrs.setdefault("slide_id", slide_id)
    main = coords_from or files[next(iter(slide))]
    return SlideFeatures(main, slide_id, coords, attrs, "trident", patch, slide, files)


def list_trident(job_dir: str | Path) -> list[dict[str, Any]]:
    """One row per slide of a job, shaped like :func:`fusecpath.features.store.list_store`'s rows."""
    folders = encoder_folders(job_dir, warn=False)
    unmapped = [f.path.name for f in folders if f.zoo is None]
    rows = []
    with warnings.catch_warnings():  # the unmapped folders are listed in every row instead
        warnings.simplefilter("ignore", TridentWarning)
        ids = trident_slide_ids(job_dir)
    for sid in ids:
        row: dict[str, Any] = {"slide_id": sid, "path": str(coords_dir(job_dir)), "locked": False}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TridentWarning)
                sf = open_trident_slide(job_dir, sid)
        except StoreError as exc:
            rows.append({**row, "error": str(exc)})
            continue
        levels: dict[str, dict[str, Any]] = {"patch": {}, "slide": {}}
        for level, table in (("patch", sf._patch), ("slide", sf._slide)):
            for fm, name in sorted(table.items()):
                with h5py.File(sf.file_of(fm), "r") as f:
                    width = int(f[name].shape[-1])
                folder = sf.file_of(fm).parent.name
                levels[level][fm] = {"dim": width, "fingerprint": None, "trident": folder}
        row.update(
            bytes=sum(p.stat().st_size for p in sf._files.values()),
            format="trident",
            n_patches=len(sf.coords),
            mpp=sf.attrs.get("mpp"),
            read_px=sf.attrs.get("read_px"),
            patch_size_level0=sf.attrs.get("patch_size_level0"),
            patch_fms=levels["patch"],
            slide_fms=levels["slide"],
            other=[f"{name} (unmapped)" for name in unmapped],
            error=None,
        )
        rows.append(row)
    return rows
