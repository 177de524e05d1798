"""Every registered patch FM's preprocessing against its authors' pipeline (a PIL image through
torchvision's transforms) on real patches, on the CPU path and on the float path devices take."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusecpath.api import list_encoders
from fusecpath.slides import open_slide
from fusecpath.testing import (
    PREPROCESS_MAX_GREY,
    PREPROCESS_MEAN_GREY,
    PREPROCESS_MIN_COSINE,
    compare_to_reference,
)

SPECS = [spec for spec in list_encoders("patch") if spec.input_px is not None]


def _preprocessing(spec) -> tuple:
    return (
        spec.read_geometry,
        spec.input_px,
        spec.resize_px,
        spec.crop,
        spec.interpolation,
        spec.mean,
        spec.std,
    )


# one case per distinct preprocessing (kaiko's five ViTs share one), named after the FMs that use it
DISTINCT: dict[tuple, list] = {}
for _spec in SPECS:
    DISTINCT.setdefault(_preprocessing(_spec), []).append(_spec)
CASES = [pytest.param(group[0], id="+".join(s.name for s in group)) for group in DISTINCT.values()]
PATHS = ["cpu", "float"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def read_patches(real_slide):
    """(mpp, read_px) -> 6 uint8 patches read from the real slide at that geometry."""
    cache: dict[tuple[float, int], torch.Tensor] = {}

    def read(spec) -> torch.Tensor:
        if spec.read_geometry not in cache:
            with open_slide(real_slide) as slide:
                size = slide.patch_size_level0(*spec.read_geometry)
                xs = np.linspace(0, slide.dimensions[0] - size - 1, 3)
                ys = np.linspace(0, slide.dimensions[1] - size - 1, 2)
                patches = [slide.read_patch(x, y, size, spec.read_px) for x in xs for y in ys]
            cache[spec.read_geometry] = torch.from_numpy(np.stack(patches))
        return cache[spec.read_geometry]

    return read


def test_every_first_party_patch_fm_is_covered():
    names = {spec.name for spec in SPECS}
    assert {"uni", "conch", "virchow2", "prov-gigapath", "ctranspath", "musk", "hed-stain"} <= names


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("spec", CASES)
def test_input_and_features_match_the_authors_pipeline(spec, path, read_patches):
    patches = read_patches(spec)
    device = "cuda" if path == "cuda" else "cpu"
    got = compare_to_reference(patches, spec, device=device, in_float=True if path == "float" else None)
    assert got["input_max_grey"] <= PREPROCESS_MAX_GREY + 1e-3, got
    assert got["input_mean_grey"] <= PREPROCESS_MEAN_GREY, got
    assert got["feature_min_cosine"] >= PREPROCESS_MIN_COSINE, got


def test_a_read_at_input_size_is_exactly_totensor_normalize(read_patches):
    spec = next(s for s in SPECS if s.name == "virchow2")  # 224 px read, 224 px input: no resize
    patches = read_patches(spec)
    got = compare_to_reference(patches, spec)
    assert got["input_max_grey"] < 1e-3 and got["feature_min_cosine"] > 0.999999
