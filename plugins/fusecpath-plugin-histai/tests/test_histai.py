"""HistAI plugin: Hibou architectures on the meta device, preprocessing, and a checkpoint with the hub's
legacy key names (``mlp.weights_in``, ``attention.attention.query``) loaded offline, no remote code."""

import dataclasses

import pytest
import torch

import fusecpath
from fusecpath.encoders import hf_vit
from fusecpath.encoders.preprocess import preprocess
from fusecpath.errors import WeightsError
from fusecpath.plugins import get_plugins
from fusecpath.testing import assert_input_close, reference_input

# Published parameter counts (lazyslide-models' registry: 85.7M and 303.7M).
PUBLISHED = {"hibou-b": (768, 85.7e6), "hibou-l": (1024, 303.7e6)}


def test_registered_through_entry_point():
    (info,) = [p for p in get_plugins() if p.distribution == "fusecpath-plugin-histai"]
    assert info.models == ["hibou-b", "hibou-l"]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_architecture_on_meta(name):
    spec = fusecpath.get_spec(name)
    dim, params = PUBLISHED[name]
    with torch.device("meta"):
        model = hf_vit.architecture(spec)
        out = model(torch.empty(2, 3, 224, 224))
    assert type(model.model).__name__ == "Dinov2WithRegistersModel"
    assert model.num_prefix_tokens == 5  # CLS + 4 registers
    assert out.shape == (2, dim) == (2, spec.embed_dim)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(params, rel=0.005)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preprocessing_uses_hibou_statistics(name):
    spec = fusecpath.get_spec(name)
    assert spec.mean == (0.7068, 0.5755, 0.722) and spec.std == (0.195, 0.2316, 0.1816)
    assert (spec.read_px, spec.input_px, spec.crop, spec.interpolation) == (224, 224, False, "bicubic")
    patches = torch.randint(0, 256, (2, 256, 256, 3), dtype=torch.uint8)  # a larger read is resized
    x = preprocess(patches, spec)
    assert x.shape == (2, 3, 224, 224)
    assert_input_close(x, reference_input(patches, spec), spec)


def test_checkpoint_with_hub_key_names_round_trip(hf_cache, tmp_path):
    from safetensors import safe_open

    spec = fusecpath.get_spec("hibou-b")
    small = dataclasses.replace(
        spec, embed_dim=32, arch=dict(spec.arch, hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
    )
    torch.manual_seed(0)
    direct = hf_vit.architecture(small).eval()
    direct.model.save_pretrained(tmp_path / "saved")
    weights = tmp_path / "saved" / "model.safetensors"
    with safe_open(str(weights), "pt") as f:
        keys = set(f.keys())
    assert {
        "encoder.layer.1.mlp.weights_in.weight",
        "embeddings.register_tokens",
        "encoder.layer.0.attention.attention.query.weight",
    } <= keys
    hf_cache("histai/hibou-b", {"model.safetensors": weights})
    loaded = fusecpath.load_encoder(small)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = direct.model(pixel_values=x).pooler_output
        torch.testing.assert_close(loaded(x), expected)
        torch.testing.assert_close(expected, direct.model(pixel_values=x).last_hidden_state[:, 0])


def test_incomplete_checkpoint_is_refused(tmp_path):
    from safetensors.torch import save_file

    spec = fusecpath.get_spec("hibou-b")
    small = dataclasses.replace(
        spec, embed_dim=32, arch=dict(spec.arch, hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
    )
    state = {k: v for k, v in hf_vit.architecture(small).model.state_dict().items() if "layer.1." not in k}
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightsError, match="lacks weights"):
        fusecpath.load_encoder(small, weights=tmp_path)
