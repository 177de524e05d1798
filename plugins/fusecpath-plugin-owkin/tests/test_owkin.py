"""Owkin plugin: registration, architectures on the meta device, preprocessing, and the transformers
checkpoint round trip through the real loader (an HF cache layout under HF_HUB_OFFLINE=1)."""

import dataclasses

import pytest
import torch

import fusecpath
from fusecpath.encoders import hf_vit
from fusecpath.encoders.preprocess import preprocess
from fusecpath.errors import WeightsError
from fusecpath.plugins import get_plugins
from fusecpath.testing import assert_input_close, reference_input

# name -> (embed_dim, published parameter count, relative tolerance)
PUBLISHED = {"phikon": (768, 85.8e6, 0.01), "phikon-v2": (1024, 303.4e6, 0.01)}


def test_registered_through_entry_point():
    (info,) = [p for p in get_plugins() if p.distribution == "fusecpath-plugin-owkin"]
    assert info.models == ["phikon", "phikon-v2"]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_architecture_on_meta(name):
    spec = fusecpath.get_spec(name)
    dim, params, tol = PUBLISHED[name]
    with torch.device("meta"):
        model = hf_vit.architecture(spec)
        out = model(torch.empty(2, 3, spec.input_px, spec.input_px))
    assert out.shape == (2, dim) == (2, spec.embed_dim)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(params, rel=tol)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preprocessing(name):
    spec = fusecpath.get_spec(name)
    assert (spec.mpp, spec.read_px, spec.input_px, spec.interpolation) == (0.5, 224, 224, "bilinear")
    assert spec.mean == (0.485, 0.456, 0.406) and spec.std == (0.229, 0.224, 0.225)
    assert spec.crop is (name == "phikon-v2")
    patches = torch.randint(0, 256, (2, spec.read_px, spec.read_px, 3), dtype=torch.uint8)
    x = preprocess(patches, spec)
    assert x.shape == (2, 3, 224, 224)
    assert_input_close(x, reference_input(patches, spec), spec)


def _small_phikon():
    """Phikon's spec with a small ViT: same loader, hub repo, file names and key names."""
    from transformers import ViTConfig, ViTModel

    spec = fusecpath.get_spec("phikon")
    arch = dict(spec.arch, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    spec = dataclasses.replace(spec, arch=arch, embed_dim=32)
    _, config_kwargs, _ = hf_vit.split_arch(arch)
    torch.manual_seed(0)
    model = ViTModel(ViTConfig(**config_kwargs), add_pooling_layer=False).eval()
    return spec, model


def _repo_files(model, tmp_path):
    folder = tmp_path / "saved"
    model.save_pretrained(folder)  # config.json + model.safetensors, transformers' own key names
    assert "encoder.layer.0.attention.attention.query.weight" in _keys(folder / "model.safetensors")
    return {name: folder / name for name in ("config.json", "model.safetensors")}


def _keys(path):
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return set(f.keys())


def test_checkpoint_round_trip_offline(hf_cache, tmp_path):
    spec, direct = _small_phikon()
    hf_cache("owkin/phikon", _repo_files(direct, tmp_path))
    loaded = fusecpath.load_encoder(spec)
    x = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        expected = direct(pixel_values=x).last_hidden_state[:, 0]
        got = loaded(x)
    assert got.shape == (3, 32)
    torch.testing.assert_close(got, expected)


def test_explicit_folder_and_mismatched_config(hf_cache, tmp_path):
    spec, direct = _small_phikon()
    files = _repo_files(direct, tmp_path)
    loaded = fusecpath.load_encoder(spec, weights=files["model.safetensors"].parent)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), direct(pixel_values=x).last_hidden_state[:, 0])
    wrong = dataclasses.replace(spec, arch=dict(spec.arch, num_hidden_layers=3))
    with pytest.raises(WeightsError, match="num_hidden_layers=2"):
        fusecpath.load_encoder(wrong, weights=files["config.json"].parent)


def test_not_cached_offline_is_one_clear_line(hf_cache):
    with pytest.raises(WeightsError) as info:
        fusecpath.load_encoder("phikon")
    message = str(info.value)
    assert "\n" not in message and "hf download owkin/phikon" in message
