"""Heatmap PNG over the thumbnail and the QuPath GeoJSON of patch scores, on a real H&E slide."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from fusecpath.report.heatmap import score_map, write_geojson, write_heatmap


def test_score_map_places_patches():
    coords = np.array([[0, 0], [512, 256], [256, 0]])
    grid = score_map((4, 6), coords, 256.0, np.array([0.1, 0.9, 0.5]), level0_per_px=128.0)
    expected = np.full((4, 6), np.nan, np.float32)
    expected[0:2, 0:2], expected[2:4, 4:6], expected[0:2, 2:4] = 0.1, 0.9, 0.5
    np.testing.assert_array_equal(grid, expected)


def test_geojson_is_a_qupath_feature_collection(tmp_path):
    coords = np.array([[0, 0], [512, 256]])
    path = write_geojson(
        tmp_path / "s.geojson",
        coords,
        512.0,
        {"attention": np.array([0.25, 0.75]), "prob_mutant": np.array([0.5, 0.5])},
        "s",
    )
    data = json.loads(path.read_text())
    assert data["type"] == "FeatureCollection" and len(data["features"]) == 2
    second = data["features"][1]
    assert second["geometry"] == {
        "type": "Polygon",
        "coordinates": [[[512.0, 256.0], [1024.0, 256.0], [1024.0, 768.0], [512.0, 768.0], [512.0, 256.0]]],
    }
    props = second["properties"]
    assert props["objectType"] == "detection" and props["score"] == props["attention"] == 0.75
    assert props["measurements"] == {"attention": 0.75, "prob_mutant": 0.5}
    assert not list(tmp_path.glob(".*"))


def test_heatmap_over_real_slide(tmp_path, real_slide):
    from fusecpath.slides import open_slide

    with open_slide(real_slide) as slide:
        w, h = slide.dimensions
    size = 256.0
    coords = np.array([[x, y] for y in range(0, h - 256, 256) for x in range(0, w - 256, 256)])
    scores = coords[:, 0].astype(float)  # a left-to-right gradient
    path = write_heatmap(tmp_path / "s.png", real_slide, coords, size, scores, "gradient")
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert image.shape[0] > 100 and image.shape[1] > 100
    # inferno: dark on the low-score (left) side, bright on the right
    middle = image[image.shape[0] // 2]
    inner = middle[(middle.sum(axis=1) < 750)]  # drop the white margin
    assert inner[: len(inner) // 5].mean() < inner[-len(inner) // 3 :].mean()
