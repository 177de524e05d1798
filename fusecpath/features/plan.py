"""What one slide's extraction needs, found without writing anything: the FMs still to do, the tissue
grid, and the read geometries. Planning takes no lock, so the next slide is planned (and its reads
queued) while the current one is read; the plan is checked against the slide's state again under
the lock before it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusecpath.errors import FusecpathError
from fusecpath.features.readers import Geometry
from fusecpath.features.store import StoreError, feature_path, open_features
from fusecpath.slides.reader import open_slide, quick_checksum, slide_id
from fusecpath.zoo import EncoderSpec


class ExtractionError(FusecpathError):
    """A slide that cannot be extracted (no tissue, nothing to do, ...)."""


@dataclass(frozen=True)
class ReadGroup:
    """Patch FMs sharing one read geometry, and where each patch is read at level 0."""

    mpp: float
    read_px: int
    size_level0: float  # side of the read square at level 0
    offset: float  # added to the grid coords (centres the read square on the grid tile)
    specs: tuple[EncoderSpec, ...]

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.offset, self.size_level0, self.read_px)


@dataclass
class SlidePlan:
    """One slide's work. ``state`` (checksum and stored fingerprints) is what the plan was made from;
    ``ticket`` is the reader pool's ticket once its patches are queued."""

    path: Path
    target: Path
    slide_mpp: float
    state: tuple
    stored: dict | None  # the stored coords' attrs (and "_coords") when the grid is kept
    todo_patch: list[EncoderSpec]
    todo_slide: list[EncoderSpec]
    coords: np.ndarray | None = None
    grid: tuple[float, int, float] | None = None  # mpp, read_px, read size at level 0
    tissue: Any = None  # the TissueMask when the grid is new
    tissue_files: dict[str, bytes] | None = None  # its files (render_tissue), written with the features
    groups: tuple[ReadGroup, ...] = ()
    ticket: int | None = None

    @property
    def todo(self) -> bool:
        return bool(self.todo_patch or self.todo_slide)

    @property
    def patches(self) -> int:
        if self.coords is not None:
            return len(self.coords)
        return len(self.stored["_coords"]) if self.stored else 0


def slide_state(path: Path, target: Path, slide_mpp: float) -> tuple[tuple, dict | None]:
    """((checksum, stored patch fingerprints, stored slide fingerprints), stored coords attrs)."""
    checksum = quick_checksum(path)
    patch, slide, stored = _stored_state(target, checksum, slide_mpp)
    return (checksum, tuple(sorted(patch.items())), tuple(sorted(slide.items()))), stored


def plan_slide(
    path: Path,
    out_dir: Path,
    patch_specs: tuple[EncoderSpec, ...],
    slide_specs: tuple[EncoderSpec, ...],
    mpp: float | None,
) -> SlidePlan:
    """The FMs not yet stored with their fingerprint and, when patch FMs are among them, the grid
    (kept from the feature file when there is one, else tiled on the tissue at the first patch FM's
    geometry) and the read groups."""
    from fusecpath.slides.tiling import tile_tissue
    from fusecpath.slides.tissue import segment_tissue

    target = feature_path(out_dir, slide_id(path))
    with open_slide(path, mpp=mpp) as slide:
        state, stored = slide_state(path, target, slide.mpp)
        stored_patch, stored_slide = dict(state[1]), dict(state[2])
        todo_patch = [s for s in patch_specs if stored_patch.get(s.name) != s.fingerprint()]
        redone = {s.name for s in todo_patch}
        todo_slide = [
            s for s in slide_specs if stored_slide.get(s.name) != s.fingerprint() or s.requires in redone
        ]
        plan = SlidePlan(path, target, slide.mpp, state, stored, todo_patch, todo_slide)
        if not plan.todo:
            return plan
        if stored is not None:
            plan.coords = stored["_coords"]
            plan.grid = (
                float(stored["mpp"]),
                int(stored["read_px"]),
                float(stored["patch_size_level0_exact"]),
            )
        else:
            first = todo_patch[0]
            plan.tissue = segment_tissue(slide)
            tiling = tile_tissue(slide, plan.tissue, first.mpp, first.read_px)
            if len(tiling) == 0:
                raise ExtractionError(
                    f"{path.name}: no tissue found (tissue covers {plan.tissue.area_fraction:.1%} of the "
                    f"thumbnail, too little for one {first.read_px}-px patch at {first.mpp} µm/px); "
                    "check the slide or its mpp"
                )
            plan.coords, plan.grid = tiling.coords, (tiling.mpp, tiling.read_px, tiling.size_level0)
        plan.groups = tuple(plan_groups(todo_patch, slide.mpp, plan.grid[2]))
    return plan


def plan_groups(specs: list[EncoderSpec], slide_mpp: float, grid_size: float) -> list[ReadGroup]:
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
