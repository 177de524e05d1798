"""Tissue segmentation on a low-resolution view of the slide: Otsu on saturation, morphological
clean-up, a minimum area; the result as GeoJSON polygons (QuPath reads them) and a thumbnail."""

from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from skimage import filters, measure, morphology

from fusecpath.files import write_atomic
from fusecpath.slides.reader import Slide

SEGMENTATION_MPP = 8.0  # µm per pixel of the view segmented (about 1.25x)
MIN_SATURATION = 0.05  # never call pixels tissue below this, whatever Otsu says (all-glass slides)
MIN_TISSUE_UM2 = 40_000.0  # smaller specks are dropped (about 3 patches of 128 µm)
MIN_HOLE_UM2 = 20_000.0  # smaller holes are filled
MAX_VIEW_PX = 2048  # longest side of the segmented view


@dataclass
class TissueMask:
    """A boolean mask of the slide at ``downsample`` level-0 px per mask px, the RGB view it was
    computed on, and its polygons at level 0 (traced when first asked for: tiling needs only the mask)."""

    mask: np.ndarray
    downsample: float
    thumbnail: np.ndarray
    threshold: float

    @functools.cached_property
    def polygons(self) -> list[list[np.ndarray]]:
        """Each: [exterior ring, *holes], rings (K, 2) x, y at level 0."""
        return mask_polygons(self.mask, self.downsample)

    @property
    def area_fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0


def channel_range(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max, min) over the channels of an RGB image, pixel by pixel (elementwise over the three
    planes: several times faster than reducing the last axis of length 3)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)


def saturation(rgb: np.ndarray, high: np.ndarray | None = None, low: np.ndarray | None = None) -> np.ndarray:
    """HSV saturation in [0, 1] of a uint8 RGB image (``high``, ``low``: its channel_range)."""
    if high is None or low is None:
        high, low = channel_range(rgb)
    high, low = high.astype(np.float32), low.astype(np.float32)
    return np.where(high > 0, (high - low) / np.maximum(high, 1.0), 0.0)


def tissue_mask(
    rgb: np.ndarray,
    um_per_px: float,
    min_area_um2: float = MIN_TISSUE_UM2,
    min_hole_um2: float = MIN_HOLE_UM2,
) -> tuple[np.ndarray, float]:
    """(mask, threshold): Otsu on saturation (at least MIN_SATURATION), very dark pixels excluded,
    then closing, opening, small holes filled and small objects removed."""
    high, low = channel_range(rgb)
    sat = ndimage.median_filter(saturation(rgb, high, low), size=3)
    try:
        threshold = float(filters.threshold_otsu(sat))
    except ValueError:  # a constant image
        threshold = 1.0
    threshold = max(threshold, MIN_SATURATION)
    mask = (sat > threshold) & (high > 25)
    radius = max(1, round(16.0 / um_per_px))
    disk = morphology.disk(radius).astype(bool)
    padded = np.pad(mask, radius + 1, mode="edge")
    padded = ndimage.binary_opening(ndimage.binary_closing(padded, disk), disk)
    mask = padded[radius + 1 : -radius - 1, radius + 1 : -radius - 1]
    px_area = um_per_px**2
    mask = ~_drop_small(~mask, min_hole_um2 / px_area)
    mask = _drop_small(mask, min_area_um2 / px_area)
    return mask, threshold


def _drop_small(mask: np.ndarray, min_px: float) -> np.ndarray:
    """``mask`` without the connected components smaller than ``min_px`` pixels."""
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_px
    keep[0] = False
    return keep[labels]


def _ring_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def mask_polygons(mask: np.ndarray, downsample: float, tolerance: float = 0.75) -> list[list[np.ndarray]]:
    """Polygons (exterior + holes, level-0 x/y) of each connected component of ``mask``."""
    labels, count = ndimage.label(mask)
    polygons = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        component = np.pad(labels[box] == index, 1)
        rings = []
        for contour in measure.find_contours(component.astype(np.uint8), 0.5):
            ring = measure.approximate_polygon(contour, tolerance)
            if len(ring) < 4:
                continue
            xy = np.stack([ring[:, 1] - 1 + box[1].start, ring[:, 0] - 1 + box[0].start], axis=1)
            rings.append(xy * downsample)
        if not rings:
            continue
        rings.sort(key=lambda r: abs(_ring_area(r)), reverse=True)
        exterior, holes = rings[0], rings[1:]
        if _ring_area(exterior) < 0:  # GeoJSON (RFC 7946): exterior counter-clockwise, holes clockwise
            exterior = exterior[::-1]
        holes = [h if _ring_area(h) < 0 else h[::-1] for h in holes]
        polygons.append([exterior, *holes])
    return polygons


def segment_tissue(
    slide: Slide, mpp: float = SEGMENTATION_MPP, min_area_um2: float = MIN_TISSUE_UM2
) -> TissueMask:
    """Find the tissue of ``slide`` on a view at about ``mpp`` µm/px (coarser for slides so large that
    the view would exceed MAX_VIEW_PX a side, so memory stays bounded)."""
    downsample = max(mpp, max(slide.dimensions) * slide.mpp / MAX_VIEW_PX) / slide.mpp
    # A pyramid level a little coarser than asked is read as it is, rather than a finer one resized.
    downsample = min(
        (ds for ds in slide.level_downsamples if downsample <= ds <= 1.5 * downsample), default=downsample
    )
    rgb, downsample = slide.thumbnail(downsample * slide.mpp)
    mask, threshold = tissue_mask(rgb, downsample * slide.mpp, min_area_um2=min_area_um2)
    return TissueMask(mask, downsample, rgb, threshold)


def to_geojson(tissue: TissueMask, slide_id: str) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of tissue annotations in level-0 pixels, as QuPath imports it."""
    features = []
    for i, polygon in enumerate(tissue.polygons):
        rings = []
        for ring in polygon:
            coords = [[round(float(x), 1), round(float(y), 1)] for x, y in ring]
            if coords[0] != coords[-1]:
                coords.append(coords[0])
            rings.append(coords)
        features.append(
            {
                "type": "Feature",
                "id": f"{slide_id}-tissue-{i}",
                "geometry": {"type": "Polygon", "coordinates": rings},
                "properties": {
                    "objectType": "annotation",
                    "name": f"tissue {i}",
                    "classification": {"name": "Tissue", "color": [0, 160, 80]},
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def overlay(tissue: TissueMask) -> Image.Image:
    """The segmentation view with the tissue tinted green and its outlines drawn."""
    image = Image.fromarray(tissue.thumbnail).convert("RGB")
    tint = Image.new("RGB", image.size, (0, 170, 80))
    alpha = Image.fromarray((tissue.mask * 70).astype(np.uint8))
    image.paste(tint, (0, 0), alpha)
    draw = ImageDraw.Draw(image)
    width = max(1, round(max(image.size) / 400))
    for polygon in tissue.polygons:
        for ring in polygon:
            points = [(float(x) / tissue.downsample, float(y) / tissue.downsample) for x, y in ring]
            draw.line([*points, points[0]], fill=(0, 120, 40), width=width)
    return image


def render_tissue(tissue: TissueMask, slide_id: str) -> dict[str, bytes]:
    """The contents of ``<slide_id>.geojson`` and ``<slide_id>.png`` (overlay), by file name."""
    png = io.BytesIO()
    overlay(tissue).save(png, format="PNG", compress_level=1)
    return {
        f"{slide_id}.geojson": json.dumps(to_geojson(tissue, slide_id)).encode(),
        f"{slide_id}.png": png.getvalue(),
    }


def write_tissue(files: dict[str, bytes], out_dir: str | Path) -> tuple[Path, ...]:
    """Write ``render_tissue``'s files into ``out_dir``, each atomically."""
    return tuple(write_atomic(Path(out_dir) / name, data) for name, data in files.items())


def save_tissue(tissue: TissueMask, slide_id: str, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<slide_id>.geojson`` and ``<slide_id>.png`` (overlay) into ``out_dir``."""
    geojson, png = write_tissue(render_tissue(tissue, slide_id), out_dir)
    return geojson, png
