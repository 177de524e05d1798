"""Direct tile decoding: the same pixels as OpenSlide at every level, each tile decoded once, and a
damaged tile is the same one-line error."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fusecpath.slides import open_slide
from fusecpath.slides.reader import SlideError


@pytest.fixture(params=["SYN-000-A.svs", "SYN-001-A.tiff", "real"])
def slide_path(request, small_cohort, real_slide):
    return real_slide if request.param == "real" else small_cohort / request.param


def test_same_pixels_as_openslide_at_every_level(slide_path):
    rng = np.random.default_rng(0)
    with open_slide(slide_path) as direct, open_slide(slide_path, direct_tiles=False) as reference:
        tiles = direct.tile_levels()
        assert tiles is not None and all(tiles.has(level) for level in range(direct.level_count))
        for level in range(direct.level_count):
            ds, (width, height) = direct.level_downsamples[level], direct.level_dimensions[level]
            for _ in range(12):  # anywhere, partly outside the image too
                x, y = (int(round(v * ds)) for v in (rng.integers(-50, width), rng.integers(-50, height)))
                w, h = (int(v) for v in rng.integers(1, 400, 2))
                np.testing.assert_array_equal(
                    direct.read_rgb(x, y, level, w, h), reference.read_rgb(x, y, level, w, h)
                )
        size = direct.patch_size_level0(0.5, 256)
        for x, y in [(0, 0), (size, size / 2), (300, 111)]:
            np.testing.assert_array_equal(
                direct.read_patch(x, y, size, 256), reference.read_patch(x, y, size, 256)
            )
        assert tiles.decoded > 0


def test_each_tile_is_decoded_once_across_patches_and_geometries(real_slide):
    with open_slide(real_slide) as slide:
        tiles = slide.tile_levels()
        page = tiles._pages[0]
        grid = [(x, y) for y in range(0, 1200, 200) for x in range(0, 1200, 200)]
        for size in (256, 320):  # two read geometries over the same grid
            for x, y in grid:
                slide.read_rgb(x, y, 0, size, size)
        covered = {
            (ty, tx)
            for size in (256, 320)
            for x, y in grid
            for ty in range(y // page.tilelength, (y + size - 1) // page.tilelength + 1)
            for tx in range(x // page.tilewidth, (x + size - 1) // page.tilewidth + 1)
        }
        assert tiles.decoded == len(covered)


def test_a_damaged_tile_is_one_line(real_slide, tmp_path):
    damaged = tmp_path / "damaged.svs"
    shutil.copy(real_slide, damaged)
    with open_slide(real_slide) as slide:
        page = slide.tile_levels()._pages[0]
        offset, count = page.dataoffsets[5], page.databytecounts[5]
    with open(damaged, "r+b") as handle:
        handle.seek(offset + 2)
        handle.write(b"\x00" * (count - 4))
    with open_slide(damaged) as slide:
        row = slide.tile_levels()._pages[0]
        with pytest.raises(SlideError, match="tiles cannot be decoded") as info:
            for i in range(10):
                slide.read_rgb((i % 10) * row.tilewidth, 0, 0, row.tilewidth, row.tilelength)
        assert "\n" not in str(info.value)
