"""Opening slides, tissue segmentation and tiling at an exact mpp, on real and synthetic slides."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from fusecpath.slides import SlideError, open_slide, save_tissue, segment_tissue, tile_tissue, to_geojson
from fusecpath.synthetic.slides import GLASS, patch_truth

SYNTHETIC = [
    ("SYN-000-A.svs", 0.5, "aperio"),
    ("SYN-001-A.tiff", 0.25, "generic-tiff"),
    ("SYN-002-A.svs", 0.25, "aperio"),
    ("SYN-003-A.tiff", 0.5, "generic-tiff"),
]


def _on_tissue(tissue, coords, size):
    """Fraction of patches whose centre lies on the tissue mask."""
    centres = (coords + size / 2) / tissue.downsample
    rows = np.clip(centres[:, 1].astype(int), 0, tissue.mask.shape[0] - 1)
    cols = np.clip(centres[:, 0].astype(int), 0, tissue.mask.shape[1] - 1)
    return tissue.mask[rows, cols].mean()


def test_real_slide_tissue_geojson_and_thumbnail(real_slide, tmp_path):
    with open_slide(real_slide) as slide:
        assert slide.mpp == pytest.approx(0.499) and slide.mpp_source == "file" and slide.vendor == "aperio"
        tissue = segment_tissue(slide)
        assert 0.15 < tissue.area_fraction < 0.8 and tissue.polygons
        geojson, png = save_tissue(tissue, slide.id, tmp_path)
    collection = json.loads(geojson.read_text())
    assert collection["type"] == "FeatureCollection" and collection["features"]
    width, height = 2220, 2967
    for feature in collection["features"]:
        assert feature["geometry"]["type"] == "Polygon"
        assert feature["properties"]["objectType"] == "annotation"
        for ring in feature["geometry"]["coordinates"]:
            assert ring[0] == ring[-1] and len(ring) >= 4
            xy = np.array(ring)
            assert xy[:, 0].min() >= -tissue.downsample and xy[:, 0].max() <= width + tissue.downsample
            assert xy[:, 1].min() >= -tissue.downsample and xy[:, 1].max() <= height + tissue.downsample
    image = Image.open(png)
    assert image.mode == "RGB" and image.size == tissue.mask.shape[::-1]
    assert to_geojson(tissue, "x")["features"][0]["id"] == "x-tissue-0"


@pytest.mark.parametrize("mpp", [0.25, 0.5])
def test_real_slide_tiling_at_exact_mpp(real_slide, mpp):
    with open_slide(real_slide) as slide:
        tissue = segment_tissue(slide)
        tiling = tile_tissue(slide, tissue, mpp, 256)
        assert tiling.size_level0 == pytest.approx(256 * mpp / 0.499)  # not rounded to a magnification
        assert len(tiling) > 10 and tiling.coords.dtype == np.int64
        assert (tiling.coords >= 0).all()
        assert (tiling.coords + tiling.size_level0 <= np.array(slide.dimensions) + 1).all()
        assert _on_tissue(tissue, tiling.coords, tiling.size_level0) > 0.9
        patch = slide.read_patch(*tiling.coords[0], tiling.size_level0, 256)
        assert patch.shape == (256, 256, 3) and patch.dtype == np.uint8 and patch.flags.writeable


def test_real_slide_patch_counts_scale_with_mpp(real_slide):
    with open_slide(real_slide) as slide:
        tissue = segment_tissue(slide)
        fine, coarse = (len(tile_tissue(slide, tissue, m, 256)) for m in (0.25, 0.5))
    assert 3.0 < fine / coarse < 5.5


@pytest.mark.parametrize(("name", "mpp", "vendor"), SYNTHETIC)
def test_synthetic_slides_open_and_tile_on_tissue(small_cohort, name, mpp, vendor):
    with open_slide(small_cohort / name) as slide:
        assert slide.mpp == pytest.approx(mpp) and slide.vendor == vendor and slide.level_count >= 2
        tissue = segment_tissue(slide)
        tiling = tile_tissue(slide, tissue, 0.5, 256)
        assert tiling.size_level0 == pytest.approx(256 * 0.5 / mpp)
        assert 20 < len(tiling) < 80
        truth = patch_truth(small_cohort, slide.id, tiling.coords, tiling.size_level0)
        assert (truth != GLASS).mean() > 0.9  # patches fall on the tissue of the ground truth
        # the segmentation agrees with the ground-truth tissue (label map, 16 µm cells)
        labels = np.asarray(Image.open(small_cohort / "truth" / f"{slide.id}.png")) != GLASS
        mask = np.asarray(Image.fromarray(tissue.mask).resize(labels.shape[::-1], Image.Resampling.NEAREST))
        assert (mask & labels).sum() / (mask | labels).sum() > 0.85
        # the patch is read from the best level: at 1 µm/px a 0.25 µm/px 2x pyramid uses level 2
        level = slide.best_level(1.0 / mpp)
        assert slide.level_downsamples[level] <= 1.0 / mpp * 1.01
        patch = slide.read_patch(*tiling.coords[len(tiling) // 2], tiling.size_level0, 256)
        assert patch.shape == (256, 256, 3) and 60 < patch.mean() < 240


def test_same_tissue_read_at_two_levels_agrees(small_cohort):
    """Reading at 1 µm/px from a coarser level gives the pixels a level-0 read would, resized."""
    with open_slide(small_cohort / "SYN-001-A.tiff") as slide:  # 0.25 µm/px, 2x pyramid
        x, y = 1200, 1200
        from_level = slide.read_patch(x, y, 512, 128)  # downsample 4: level 2
        full = slide.read_rgb(x, y, 0, 512, 512)
        resized = np.asarray(Image.fromarray(full).resize((128, 128), Image.Resampling.BOX))
    assert np.abs(from_level.astype(int) - resized.astype(int)).mean() < 12


def test_plain_image_needs_mpp(openslide_fixtures):
    with pytest.raises(
        SlideError, match=r"boxes.png: the file does not say its microns per pixel; pass --mpp"
    ):
        open_slide(openslide_fixtures / "boxes.png")
    with open_slide(openslide_fixtures / "boxes.png", mpp=0.5) as slide:
        assert slide.mpp == 0.5 and slide.mpp_source == "argument" and slide.vendor == "image"
        assert slide.read_rgb(0, 0, 0, 8, 8).shape == (8, 8, 3)
    with pytest.raises(SlideError, match="positive number"):
        open_slide(openslide_fixtures / "boxes.png", mpp=-1.0)


def test_file_mpp_wins_and_dicom_opens(openslide_fixtures):
    with open_slide(openslide_fixtures / "boxes_0.dcm", mpp=9.0) as slide:
        assert slide.vendor == "dicom" and slide.mpp == pytest.approx(0.499) and slide.mpp_source == "file"


def test_bad_files_get_one_clear_line(openslide_fixtures, tmp_path):
    with pytest.raises(SlideError, match=r"unopenable.tiff: OpenSlide cannot open it \(Unsupported TIFF"):
        open_slide(openslide_fixtures / "unopenable.tiff")
    with open_slide(openslide_fixtures / "unreadable.svs") as slide:
        with pytest.raises(SlideError, match="unreadable.svs: tiles cannot be decoded"):
            slide.read_rgb(0, 0, 0, 16, 16)
    empty = tmp_path / "empty.svs"
    empty.write_bytes(b"")
    with pytest.raises(SlideError, match=r"empty.svs: the file is empty \(0 bytes\)"):
        open_slide(empty)
    truncated = tmp_path / "truncated.svs"
    truncated.write_bytes((openslide_fixtures / "small.svs").read_bytes()[:900])
    with pytest.raises(SlideError) as info:
        with open_slide(truncated) as slide:
            slide.read_rgb(0, 0, 0, 16, 16)
    assert "truncated.svs" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(SlideError, match="no such file"):
        open_slide(tmp_path / "absent.svs")
    shutil.copy(openslide_fixtures / "boxes.png", tmp_path / "boxes.jpg")  # wrong suffix, still an image
    with open_slide(tmp_path / "boxes.jpg", mpp=1.0) as slide:
        assert slide.dimensions[0] > 0


def test_glass_only_has_no_tissue(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (800, 600), (242, 242, 245)).save(blank)
    with open_slide(blank, mpp=2.0) as slide:
        tissue = segment_tissue(slide)
        assert tissue.area_fraction == 0.0 and tissue.polygons == []
        assert len(tile_tissue(slide, tissue, 0.5, 256)) == 0
