"""Prov-GigaPath plugin: tile encoder architecture, preprocessing, round trip; the LongNet slide encoder."""

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

import fusecpath
from fusecpath.api import describe_encoder
from fusecpath.encoders import timm_vit
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import verify_encoder
from fusecpath.errors import FusecpathError
from fusecpath.plugins import get_plugins
from fusecpath.testing import assert_input_close, randomise_, shrink, torch_bytes

IN_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IN_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def test_discovered_through_entry_point():
    (info,) = [p for p in get_plugins() if p.distribution == "fusecpath-plugin-gigapath"]
    assert info.models == ["prov-gigapath", "prov-gigapath-slide"]
    assert fusecpath.get_spec("gigapath").name == "prov-gigapath"
    assert fusecpath.get_spec("gigapath-slide").requires == "prov-gigapath"


def test_tile_encoder_on_meta():
    # Published: 1.13B parameters, 1536-d (Xu et al., Nature 2024).
    report = verify_encoder("prov-gigapath")
    assert report["built"] and report["ok"] and report["output_dim"] == 1536, report
    assert abs(report["parameters"] - 1.13e9) / 1.13e9 < 0.01, report["parameters"]


def test_preprocessing_resize_256_bicubic_then_centre_crop_224():
    spec = fusecpath.get_spec("prov-gigapath")
    assert (spec.mpp, spec.read_px, spec.resize_px, spec.input_px, spec.crop) == (0.5, 256, 256, 224, True)
    for size in (256, 512):  # a read at 256 px is only cropped; a larger one is resized first
        patches = torch.randint(0, 256, (2, size, size, 3), dtype=torch.uint8)
        images = [Image.fromarray(p) for p in patches.numpy()]
        if size != 256:
            images = [image.resize((256, 256), Image.BICUBIC) for image in images]
        x = (
            torch.from_numpy(np.stack([np.asarray(image) for image in images])).permute(0, 3, 1, 2).float()
            / 255
        )
        expected = (x[..., 16:240, 16:240] - IN_MEAN) / IN_STD  # transforms.CenterCrop(224) of 256
        assert_input_close(preprocess(patches, spec), expected, spec)


def test_checkpoint_round_trip_through_hf_cache(hf_cache):
    spec = shrink(
        fusecpath.get_spec("prov-gigapath"),
        {"embed_dim": 48, "depth": 2, "num_heads": 3, "img_size": 32},
        embed_dim=48,
        input_px=32,
    )
    reference = randomise_(timm_vit.architecture(spec)).eval()
    state = reference.trunk.state_dict()
    assert state["patch_embed.proj.weight"].shape[-2:] == (16, 16)  # patch 16 on a dinov2 giant skeleton
    hf_cache("prov-gigapath/prov-gigapath", {"pytorch_model.bin": torch_bytes(state), "config.json": b"{}"})
    loaded = fusecpath.load_encoder(spec)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), reference(x))


def test_slide_encoder_declares_its_package():
    info = describe_encoder("prov-gigapath-slide")
    assert info["weights_file"] == "slide_encoder.pth"
    assert any(
        d.startswith("gigapath @ git+https://github.com/prov-gigapath/prov-gigapath")
        for d in info["dependencies"]
    )
    assert verify_encoder("prov-gigapath-slide")["built"] is False


@pytest.mark.skipif(importlib.util.find_spec("gigapath") is not None, reason="gigapath is installed here")
def test_slide_encoder_without_its_package_is_one_line():
    with pytest.raises(FusecpathError) as excinfo:
        fusecpath.load_encoder("prov-gigapath-slide")
    assert "\n" not in str(excinfo.value)
    assert "pip install 'gigapath @ git+https://github.com/prov-gigapath/prov-gigapath.git'" in str(
        excinfo.value
    )
