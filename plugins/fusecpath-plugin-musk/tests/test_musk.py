"""MUSK: its spec and preprocessing; without the musk package it says what to install, in one line."""

import importlib.util

import pytest
import torch

import fusecpath
from fusecpath.api import missing_dependencies
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import verify_encoder
from fusecpath.errors import FusecpathError
from fusecpath.testing import assert_input_close, reference_input

HAS_MUSK = importlib.util.find_spec("musk") is not None


def test_preprocessing_384_bicubic_crop_inception_statistics():
    spec = fusecpath.get_spec("musk")
    assert (spec.read_px, spec.input_px, spec.crop, spec.interpolation) == (384, 384, True, "bicubic")
    assert spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.5, 0.5, 0.5)
    patches = torch.randint(0, 256, (1, 512, 512, 3), dtype=torch.uint8)
    x = preprocess(patches, spec)
    assert x.shape == (1, 3, 384, 384)
    assert_input_close(x, reference_input(patches, spec), spec)


@pytest.mark.skipif(HAS_MUSK, reason="the musk package is installed")
def test_without_the_package_says_what_to_install():
    spec = fusecpath.get_spec("musk")
    assert "musk @ git+https://github.com/lilab-stanford/MUSK" in missing_dependencies(spec)
    report = verify_encoder("musk")
    assert report["built"] is False and "pip install" in report["note"]
    with pytest.raises(
        FusecpathError, match=r"pip install 'musk @ git\+https://github.com/lilab-stanford/MUSK'"
    ):
        fusecpath.load_encoder("musk")


@pytest.mark.skipif(
    not HAS_MUSK, reason="needs the musk package (git+https://github.com/lilab-stanford/MUSK)"
)
def test_architecture_on_meta_with_the_package():
    report = verify_encoder("musk")
    assert report["ok"] and report["output_dim"] == 1024
