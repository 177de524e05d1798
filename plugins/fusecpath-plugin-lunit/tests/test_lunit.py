"""Lunit plugin: ViT-S/8 on the meta device and Lunit's own normalisation."""

import pytest
import torch

import fusecpath
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import verify_encoder
from fusecpath.testing import reference_input


def test_architecture_on_meta():
    report = verify_encoder("lunit-vits8")
    assert report["ok"] and report["output_dim"] == 384
    assert report["parameters"] == pytest.approx(21.7e6, rel=0.01)  # ViT-S/8, published 21.7M


def test_preprocessing_lunit_statistics():
    spec = fusecpath.get_spec("lunit-dino-s8")
    assert spec.mean == (0.70322989, 0.53606487, 0.66096631)
    assert spec.std == (0.21716536, 0.26081574, 0.20723464)
    patches = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8)
    x = preprocess(patches, spec)
    assert x.shape == (2, 3, 224, 224)
    torch.testing.assert_close(x, reference_input(patches, spec), atol=1e-6, rtol=0)
