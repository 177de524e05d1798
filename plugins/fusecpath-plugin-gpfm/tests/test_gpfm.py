"""GPFM plugin: ViT-L/14 on the meta device, preprocessing, and GPFM.pth (a pickle) loaded offline."""

import dataclasses

import pytest
import torch

import fusecpath
from fusecpath.encoders import timm_vit
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import verify_encoder
from fusecpath.testing import assert_input_close, reference_input


def test_architecture_on_meta():
    report = verify_encoder("gpfm")
    assert report["ok"] and report["output_dim"] == 1024
    assert report["parameters"] == pytest.approx(303e6, rel=0.01)  # published 303M


def test_preprocessing_resize_bicubic_imagenet():
    spec = fusecpath.get_spec("gpfm")
    assert (spec.read_px, spec.input_px, spec.crop, spec.interpolation) == (224, 224, False, "bicubic")
    patches = torch.randint(0, 256, (2, 256, 256, 3), dtype=torch.uint8)
    assert_input_close(preprocess(patches, spec), reference_input(patches, spec), spec)


def test_pickle_checkpoint_round_trip(hf_cache, tmp_path):
    spec = fusecpath.get_spec("gpfm")
    small = dataclasses.replace(spec, arch=dict(spec.arch, depth=2, embed_dim=64, num_heads=2), embed_dim=64)
    torch.manual_seed(0)
    direct = timm_vit.architecture(small).eval()
    state = {**direct.trunk.state_dict(), "mask_token": torch.zeros(1, 64)}  # as DINOv2 training saves it
    torch.save(state, tmp_path / "GPFM.pth")  # a plain dict of tensors, as published
    hf_cache("majiabo/GPFM", {"GPFM.pth": tmp_path / "GPFM.pth"})
    loaded = fusecpath.load_encoder(small)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), direct.trunk.forward_features(x)[:, 0])
