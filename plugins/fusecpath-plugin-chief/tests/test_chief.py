"""CTransPath + CHIEF: sizes on the meta device, preprocessing (10x read), CTransPath's timm-0.5 checkpoint
layout from the Hub dataset cache, and CHIEF's attention pooling from a local checkpoint."""

import dataclasses
import re

import pytest
import torch
from fusecpath_plugin_chief import chief, ctranspath

import fusecpath
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import verify_encoder
from fusecpath.errors import WeightsError
from fusecpath.plugins import get_plugins
from fusecpath.testing import assert_input_close, reference_input


def test_registered_through_entry_point():
    (info,) = [p for p in get_plugins() if p.distribution == "fusecpath-plugin-chief"]
    assert info.models == ["chief", "ctranspath"]
    assert fusecpath.get_spec("chief").requires == "ctranspath"


@pytest.mark.parametrize(("name", "params"), [("ctranspath", 27.5e6), ("chief", 1.2e6)])
def test_architecture_on_meta(name, params):
    report = verify_encoder(name)  # published: CTransPath 27.5M, CHIEF slide encoder 1.2M
    assert report["ok"] and report["output_dim"] == 768
    assert report["parameters"] == pytest.approx(params, rel=0.02)


def test_preprocessing_10x_read_resized_to_224():
    spec = fusecpath.get_spec("ctranspath")
    assert (spec.mpp, spec.read_px, spec.input_px, spec.crop, spec.interpolation) == (
        1.0,
        256,
        224,
        False,
        "bilinear",
    )
    patches = torch.randint(0, 256, (2, 256, 256, 3), dtype=torch.uint8)
    assert_input_close(preprocess(patches, spec), reference_input(patches, spec), spec)


def _timm05_layout(state):
    """What CTransPath's timm-0.5 training code saved: downsampling at the end of a stage, mask buffers."""
    out = {}
    for key, value in state.items():
        key = re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", key)
        out[key] = value
        if key.endswith("attn.relative_position_bias_table"):
            out[key.replace("relative_position_bias_table", "relative_position_index")] = torch.zeros(
                49, 49
            ).long()
    out["layers.0.blocks.1.attn_mask"] = torch.zeros(64, 49, 49)
    return {"model": out}


def test_ctranspath_checkpoint_from_dataset_cache(hf_cache, tmp_path):
    spec = fusecpath.get_spec("ctranspath")
    small = dataclasses.replace(
        spec, embed_dim=256, arch=dict(spec.arch, embed_dim=32, num_heads=(1, 2, 4, 8))
    )
    torch.manual_seed(0)
    direct = ctranspath.architecture(small).eval()
    old = _timm05_layout(direct.state_dict())
    assert "layers.0.downsample.reduction.weight" in old["model"]
    torch.save(old, tmp_path / "CHIEF_CTransPath.pth")
    snapshot = hf_cache("MahmoodLab/hest-bench", {spec.weights_file: tmp_path / "CHIEF_CTransPath.pth"})
    repo_dir = snapshot.parents[1]
    repo_dir.rename(repo_dir.with_name("datasets--MahmoodLab--hest-bench"))  # a dataset repo, not a model
    loaded = fusecpath.load_encoder(small)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        out = loaded(x)
        torch.testing.assert_close(out, direct(x))
    assert out.shape == (1, 256)


def test_ctranspath_not_cached_is_one_line(hf_cache):
    with pytest.raises(WeightsError) as info:
        fusecpath.load_encoder("ctranspath")
    assert "\n" not in str(info.value) and "MahmoodLab/hest-bench" in str(info.value)


def test_chief_attention_pooling_from_local_checkpoint(tmp_path, monkeypatch):
    spec = fusecpath.get_spec("chief")
    torch.manual_seed(0)
    direct = chief.architecture(spec).eval()
    torch.save({**direct.state_dict(), "organ_embedding": torch.randn(19, 768)}, tmp_path / spec.weights_file)
    monkeypatch.setenv("FUSECPATH_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("FUSECPATH_WEIGHTS_CHIEF", str(tmp_path))  # a folder holding CHIEF_pretraining.pth
    loaded = fusecpath.load_encoder("chief")
    features, coords = torch.randn(50, 768), torch.randint(0, 10_000, (50, 2))
    with torch.no_grad():
        out = loaded(features, coords)
        weights = direct.attention(features)
    assert out.shape == (768,)
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0))
    torch.testing.assert_close(out, weights @ features)


def test_chief_without_weights_names_the_download(monkeypatch, tmp_path):
    monkeypatch.setenv("FUSECPATH_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("FUSECPATH_WEIGHTS_CHIEF", raising=False)
    with pytest.raises(WeightsError, match="drive.google.com.*FUSECPATH_WEIGHTS_CHIEF"):
        fusecpath.load_encoder("chief")
