"""Truncated ResNet-50: size on the meta device, preprocessing, and a full-network checkpoint cut down."""

import dataclasses

import pytest
import torch

import fusecpath
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import verify_encoder
from fusecpath.testing import assert_input_close, reference_input


def test_architecture_on_meta():
    report = verify_encoder("resnet50-trunc")
    assert report["ok"] and report["output_dim"] == 1024
    assert report["parameters"] == pytest.approx(8.54e6, rel=0.005)  # conv1..layer3 of ResNet-50


def test_preprocessing_resize_then_crop():
    spec = fusecpath.get_spec("resnet50")
    assert (spec.read_px, spec.input_px, spec.crop) == (256, 224, True)
    patches = torch.randint(0, 256, (2, 256, 256, 3), dtype=torch.uint8)
    assert_input_close(preprocess(patches, spec), reference_input(patches, spec), spec)


def test_full_checkpoint_is_truncated_on_load(hf_cache, tmp_path):
    import timm
    from safetensors.torch import save_file

    spec = dataclasses.replace(
        fusecpath.get_spec("resnet50-trunc"), embed_dim=256, arch={"model_name": "resnet18", "out_index": 3}
    )
    torch.manual_seed(0)
    full = timm.create_model("resnet18", pretrained=False).eval()  # the hub file holds the whole network
    save_file(full.state_dict(), str(tmp_path / "model.safetensors"))
    hf_cache("timm/resnet50.tv_in1k", {"model.safetensors": tmp_path / "model.safetensors"})
    loaded = fusecpath.load_encoder(spec)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        h = full.maxpool(full.act1(full.bn1(full.conv1(x))))
        expected = full.layer3(full.layer2(full.layer1(h))).mean(dim=(2, 3))
        torch.testing.assert_close(loaded(x), expected)
