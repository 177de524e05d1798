"""Bioptimus plugin: registration, architectures on meta, preprocessing, checkpoint round trip."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import fusecpath
from fusecpath.cli import main
from fusecpath.encoders import timm_vit
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import verify_encoder
from fusecpath.plugins import get_plugins
from fusecpath.testing import assert_input_close, randomise_, shrink, torch_bytes

HO_MEAN = torch.tensor([0.707223, 0.578729, 0.703617]).view(1, 3, 1, 1)
HO_STD = torch.tensor([0.211883, 0.230117, 0.177517]).view(1, 3, 1, 1)


def test_discovered_through_entry_point():
    (info,) = [p for p in get_plugins() if p.distribution == "fusecpath-plugin-bioptimus"]
    assert info.models == ["h-optimus-0", "h-optimus-1", "h0-mini"]
    assert fusecpath.get_spec("hoptimus0").name == "h-optimus-0"


# Published sizes: H-optimus-0/1 "1.1B parameters" (model cards), ViT-g/14 with 4 registers.
@pytest.mark.parametrize(
    ("name", "published", "dim"),
    [
        ("h-optimus-0", 1.1e9, 1536),
        ("h-optimus-1", 1.1e9, 1536),
    ],
)
def test_architecture_on_meta(name, published, dim):
    report = verify_encoder(name)
    assert report["built"] and report["ok"], report
    assert report["output_dim"] == dim
    assert abs(report["parameters"] - published) / published < 0.05, report["parameters"]


def test_h0_mini_architecture_on_meta():
    # H0-mini: ViT-B/14, 4 registers, packed SwiGLU. Its card shows (1, 261, 768) tokens for 224 px:
    # 1 CLS + 4 registers + 16 x 16 patches.
    report = verify_encoder("h0-mini")
    assert report["ok"] and report["output_dim"] == 768
    spec = fusecpath.get_spec("h0-mini")
    with torch.device("meta"):
        trunk = timm_vit.create_trunk(spec.arch)
        tokens = trunk.forward_features(torch.empty(1, 3, 224, 224))
    assert tuple(tokens.shape) == (1, 261, 768)
    assert trunk.num_prefix_tokens == 5
    assert 60e6 < report["parameters"] < 90e6  # a ViT-B; the card gives no exact count


@pytest.mark.parametrize("name", ["h-optimus-0", "h-optimus-1", "h0-mini"])
def test_preprocessing_224_no_crop_bioptimus_norm(name):
    spec = fusecpath.get_spec(name)
    assert (spec.mpp, spec.read_px, spec.input_px, spec.crop) == (0.5, 224, 224, False)
    patches = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8)
    # The card's transform: ToTensor, Normalize(mean, std) on a 224 px tile at 0.5 µm/px.
    expected = (patches.permute(0, 3, 1, 2).float() / 255 - HO_MEAN) / HO_STD
    torch.testing.assert_close(preprocess(patches, spec), expected)
    # A tile read larger is resized (bilinear, PIL's filter) to 224, not cropped.
    big = torch.randint(0, 256, (1, 448, 448, 3), dtype=torch.uint8)
    resized = torch.from_numpy(np.array(Image.fromarray(big[0].numpy()).resize((224, 224), Image.BILINEAR)))
    expected = (resized.permute(2, 0, 1)[None].float() / 255 - HO_MEAN) / HO_STD
    assert_input_close(preprocess(big, spec), expected, spec)


def test_checkpoint_round_trip_through_hf_cache(hf_cache):
    """A small H-optimus-0 (registers, packed SwiGLU, layer scale) in the repo's pytorch_model.bin."""
    spec = shrink(
        fusecpath.get_spec("h-optimus-0"),
        {"embed_dim": 48, "depth": 2, "num_heads": 3, "img_size": 28},
        embed_dim=48,
        input_px=28,
    )
    reference = randomise_(timm_vit.architecture(spec)).eval()
    state = reference.trunk.state_dict()
    assert {"cls_token", "reg_token", "blocks.1.ls2.gamma", "blocks.0.mlp.fc1.weight"} <= set(state)
    assert state["reg_token"].shape == (1, 4, 48)
    hf_cache("bioptimus/H-optimus-0", {"pytorch_model.bin": torch_bytes(state), "config.json": b"{}"})

    loaded = fusecpath.load_encoder(spec)
    x = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), reference(x))
    assert loaded(x).shape == (2, 48)


def test_cli_verify_downloads_nothing(tmp_path, capsys):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, "-m", "fusecpath", "models", "verify", "h0-mini", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    report = json.loads(out.stdout)
    assert report["built"] and report["ok"] and report["output_dim"] == 768
    assert report["parameters"] == verify_encoder("h0-mini")["parameters"]
    assert not (tmp_path / "cache").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["models", "verify", "h0-mini"])
    assert exit_.value.code == 0
    assert "h0-mini: 71,571,456 parameters, output dim 768 (declared 768): ok" in capsys.readouterr().out
