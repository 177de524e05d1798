"""Per-patch scores of one slide as a QuPath GeoJSON and as a heatmap PNG over the slide's thumbnail."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from fusecpath.files import write_atomic

THUMBNAIL_PX = 1024  # the heatmap's longer side, in thumbnail pixels (never finer than level 0)


def patch_geojson(
    coords: np.ndarray, patch_size_level0: float, scores: Mapping[str, np.ndarray], slide_id: str
) -> dict:
    """A FeatureCollection of patch squares (level-0 pixels) that QuPath imports as detections.

    Each feature carries every score as a property and as a QuPath measurement; ``score`` is the first.
    """
    names = list(scores)
    features = []
    for i, (x, y) in enumerate(np.asarray(coords, dtype=np.float64)):
        x1, y1 = x + patch_size_level0, y + patch_size_level0
        values = {name: round(float(scores[name][i]), 6) for name in names}
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[x, y], [x1, y], [x1, y1], [x, y1], [x, y]]],
                },
                "properties": {
                    "objectType": "detection",
                    "name": f"patch {i}",
                    "score": values[names[0]],
                    **values,
                    "measurements": values,
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "properties": {"slide_id": slide_id, "units": "level-0 pixels"},
        "features": features,
    }


def write_geojson(
    path: Path, coords: np.ndarray, patch_size_level0: float, scores: Mapping[str, np.ndarray], slide_id: str
) -> Path:
    write_atomic(path, json.dumps(patch_geojson(coords, patch_size_level0, scores, slide_id)).encode())
    return path


def score_map(
    shape: tuple[int, int],
    coords: np.ndarray,
    patch_size_level0: float,
    scores: np.ndarray,
    level0_per_px: float,
) -> np.ndarray:
    """(H, W) float map at thumbnail resolution, NaN where no patch lies; overlapping patches keep the max."""
    grid = np.full(shape, np.nan, np.float32)
    corners = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    starts = np.round(corners / level0_per_px).astype(int)  # rounding both edges: neighbours share them
    ends = np.maximum(starts + 1, np.round((corners + patch_size_level0) / level0_per_px).astype(int))
    for (c0, r0), (c1, r1), value in zip(starts, ends, scores, strict=True):
        window = grid[r0:r1, c0:c1]
        np.fmax(window, value, out=window)
    return grid


def write_heatmap(
    path: Path, slide_path: Path, coords: np.ndarray, patch_size_level0: float, scores: np.ndarray, title: str
) -> Path:
    """The slide's thumbnail with the patch scores in colour (rank-normalised within the slide)."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt
    from scipy.stats import rankdata

    from fusecpath.slides import open_slide

    with open_slide(slide_path) as slide:
        w, h = slide.dimensions
        mpp = max(slide.mpp, slide.mpp * max(w, h) / THUMBNAIL_PX)
        thumb, level0_per_px = slide.thumbnail(mpp)
    scores = np.asarray(scores, dtype=np.float64)
    ranks = (rankdata(scores) - 1) / max(1, len(scores) - 1) if len(scores) else scores  # ties share a rank
    grid = score_map(thumb.shape[:2], coords, patch_size_level0, ranks, level0_per_px)
    height, width = thumb.shape[:2]
    fig, ax = plt.subplots(figsize=(width / 100 + 1.5, height / 100 + 0.5), dpi=100)
    ax.imshow(thumb)
    shown = ax.imshow(
        np.ma.masked_invalid(grid), cmap="inferno", alpha=0.55, vmin=0, vmax=1, interpolation="nearest"
    )
    fig.colorbar(shown, ax=ax, fraction=0.04, label="attention (rank within slide)")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
    return path
