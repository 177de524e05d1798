"""Tile a slide's tissue at an exact microns-per-pixel: a grid of level-0 coords."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusecpath.slides.reader import Slide
from fusecpath.slides.tissue import TissueMask

MIN_TISSUE_FRACTION = 0.5  # a patch is kept when at least this much of it is tissue


@dataclass(frozen=True)
class Tiling:
    """Top-left corners (N, 2) int64 at level 0 of patches ``read_px`` wide at ``mpp``."""

    coords: np.ndarray
    mpp: float
    read_px: int
    size_level0: float  # exact side in level-0 px (not rounded)

    def __len__(self) -> int:
        return len(self.coords)


def _box_means(
    mask: np.ndarray, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray
) -> np.ndarray:
    """Mean of ``mask`` over each box [y0, y1) x [x0, x1) (mask px), with an integral image."""
    integral = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int64)
    integral[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
    h, w = mask.shape
    x0, x1 = np.clip(x0, 0, w), np.clip(x1, 0, w)
    y0, y1 = np.clip(y0, 0, h), np.clip(y1, 0, h)
    x1, y1 = np.maximum(x1, x0 + 1).clip(max=w), np.maximum(y1, y0 + 1).clip(max=h)
    total = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    area = np.maximum((y1 - y0) * (x1 - x0), 1)
    return total / area


def tile_tissue(
    slide: Slide, tissue: TissueMask, mpp: float, read_px: int, min_tissue: float = MIN_TISSUE_FRACTION
) -> Tiling:
    """A non-overlapping grid anchored at (0, 0), every patch inside the slide, keeping those whose
    tissue fraction is at least ``min_tissue``; row-major order."""
    size = slide.patch_size_level0(mpp, read_px)
    width, height = slide.dimensions
    nx, ny = int((width - size) // size) + 1, int((height - size) // size) + 1
    if nx <= 0 or ny <= 0 or size > min(width, height):
        return Tiling(np.zeros((0, 2), np.int64), mpp, read_px, size)
    gy, gx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    xs, ys = np.round(gx.ravel() * size).astype(np.int64), np.round(gy.ravel() * size).astype(np.int64)
    d = tissue.downsample
    frac = _box_means(
        tissue.mask,
        np.floor(xs / d).astype(np.int64),
        np.floor(ys / d).astype(np.int64),
        np.ceil((xs + size) / d).astype(np.int64),
        np.ceil((ys + size) / d).astype(np.int64),
    )
    keep = frac >= min_tissue
    return Tiling(np.stack([xs[keep], ys[keep]], axis=1), mpp, read_px, size)
