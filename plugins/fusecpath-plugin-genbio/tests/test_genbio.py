"""GenBio-PathFM: size on the meta device, preprocessing, per-channel encoding, and model.pth loaded offline."""

import dataclasses

import pytest
import torch
from fusecpath_plugin_genbio import model as genbio

import fusecpath
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import verify_encoder
from fusecpath.testing import assert_input_close, reference_input


def _small():
    spec = fusecpath.get_spec("genbio-pathfm")
    return dataclasses.replace(
        spec, embed_dim=3 * 48, arch=dict(spec.arch, embed_dim=48, depth=2, num_heads=2)
    )


def test_architecture_on_meta():
    report = verify_encoder("genbio-pathfm")
    assert report["ok"] and report["output_dim"] == 4608  # 3 channels x 1536
    assert report["parameters"] == pytest.approx(1.13e9, rel=0.01)  # published 1.1B
    assert genbio.swiglu_hidden(1536, 4, 64) == 4096


def test_preprocessing_genbio_statistics():
    spec = fusecpath.get_spec("genbio")
    assert spec.mean == (0.697, 0.575, 0.728) and spec.std == (0.188, 0.240, 0.187)
    assert spec.precision == "bf16" and spec.crop
    patches = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8)
    assert_input_close(preprocess(patches, spec), reference_input(patches, spec), spec)


def test_channels_are_encoded_separately_with_positions():
    torch.manual_seed(0)
    model = genbio.architecture(_small()).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        out = model(x)
        per_channel = [model.channel_cls(x[:, c : c + 1]) for c in range(3)]
        flipped = model(x.flip(-1))
    assert out.shape == (2, 144)
    torch.testing.assert_close(out, torch.cat(per_channel, dim=-1))
    assert not torch.allclose(out, flipped, atol=1e-4)  # RoPE: the same patches elsewhere embed differently


def test_checkpoint_round_trip(hf_cache, tmp_path):
    spec = _small()
    torch.manual_seed(0)
    direct = genbio.architecture(spec).eval()
    state = direct.state_dict()
    assert {"storage_tokens", "rope_embed.periods", "blocks.1.mlp.w3.weight", "blocks.0.ls1.gamma"} <= set(
        state
    )
    assert "blocks.0.attn.qkv.bias" not in state
    torch.save(state, tmp_path / "model.pth")
    hf_cache("genbio-ai/genbio-pathfm", {"model.pth": tmp_path / "model.pth"})
    loaded = fusecpath.load_encoder(spec)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), direct(x))
