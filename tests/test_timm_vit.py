"""The shared timm machinery: specs to timm kwargs, token pooling, checkpoint loading, meta verification."""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath

import pytest
import torch
from safetensors.torch import save_file

import fusecpath
from fusecpath.encoders import TIMM_VIT, timm_vit
from fusecpath.encoders.remote import grid_step
from fusecpath.encoders.verify import verify_encoder
from fusecpath.errors import FusecpathError, WeightsError
from fusecpath.testing import randomise_, torch_bytes
from fusecpath.zoo import EncoderSpec

SPEC = EncoderSpec(
    name="tiny-vit",
    level="patch",
    embed_dim=64,
    **TIMM_VIT,
    source="hf-hub:example/tiny-vit",
    weights_file="model.safetensors",
    arch={
        "model_name": "vit_small_patch16_224",
        "embed_dim": 32,
        "depth": 2,
        "num_heads": 2,
        "img_size": 32,
        "reg_tokens": 2,
        "mlp_layer": "swiglu_packed",
        "act_layer": "silu",
        "mlp_ratio": 2.0,
        "no_embed_class": True,
    },
    input_px=32,
    pooling="cls+mean",
)


def test_timm_kwargs_resolve_layer_names():
    name, kwargs = timm_vit.timm_kwargs(SPEC.arch)
    from timm.layers import SwiGLUPacked

    assert name == "vit_small_patch16_224"
    assert kwargs["mlp_layer"] is SwiGLUPacked and kwargs["act_layer"] is torch.nn.SiLU
    assert kwargs["num_classes"] == 0
    with pytest.raises(ValueError, match="model_name"):
        timm_vit.timm_kwargs({"depth": 2})
    with pytest.raises(ValueError, match="swiglu_packed"):
        timm_vit.timm_kwargs({"model_name": "vit_small_patch16_224", "mlp_layer": "nope"})


def test_pool_tokens():
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)  # 1 CLS + 2 registers + 2 patches
    torch.testing.assert_close(timm_vit.pool_tokens(tokens, "cls", 3), tokens[:, 0])
    torch.testing.assert_close(timm_vit.pool_tokens(tokens, "mean", 3), tokens[:, 3:].mean(1))
    torch.testing.assert_close(
        timm_vit.pool_tokens(tokens, "cls+mean", 3), torch.cat([tokens[:, 0], tokens[:, 3:].mean(1)], dim=1)
    )
    with pytest.raises(ValueError, match="pooling"):
        timm_vit.pool_tokens(tokens, "max", 1)


def test_clean_state_dict():
    state = {"module.cls_token": 1, "module.head.weight": 2, "backbone.norm.weight": 3, "other.x": 4}
    assert timm_vit.clean_state_dict(state) == {"cls_token": 1, "norm.weight": 3, "other.x": 4}
    assert timm_vit.clean_state_dict({"visual.trunk.a": 1, "text.b": 2}, prefix="visual.trunk.") == {"a": 1}


def test_explicit_weights_env_var_and_errors(tmp_path, monkeypatch):
    reference = randomise_(timm_vit.architecture(SPEC)).eval()
    path = tmp_path / "model.safetensors"
    save_file(reference.trunk.state_dict(), str(path))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = reference(x)
        torch.testing.assert_close(fusecpath.load_encoder(SPEC, weights=path)(x), expected)  # a file
        torch.testing.assert_close(fusecpath.load_encoder(SPEC, weights=tmp_path)(x), expected)  # its folder
        monkeypatch.setenv("FUSECPATH_WEIGHTS_TINY_VIT", str(path))
        torch.testing.assert_close(fusecpath.load_encoder(SPEC)(x), expected)
    assert expected.shape == (2, 64)

    other = dataclasses.replace(SPEC, arch={**SPEC.arch, "depth": 3})
    with pytest.raises(WeightsError) as excinfo:
        fusecpath.load_encoder(other, weights=path)
    assert "does not fit the architecture" in str(excinfo.value) and "\n" not in str(excinfo.value)

    pickle = tmp_path / "pytorch_model.bin"
    pickle.write_bytes(torch_bytes({"not a tensor": PurePosixPath("code")}))  # a global weights_only refuses
    with pytest.raises(WeightsError, match="weights_only"):
        fusecpath.load_encoder(SPEC, weights=pickle)


def test_verify_builds_on_meta_without_memory_or_weights():
    report = verify_encoder(SPEC)
    assert report["built"] and report["ok"] and report["output_dim"] == 64
    expected = sum(p.numel() for p in timm_vit.architecture(SPEC).parameters())
    assert report["parameters"] == expected
    wrong = verify_encoder(dataclasses.replace(SPEC, embed_dim=32))
    assert wrong["ok"] is False and "embed_dim 32" in wrong["note"]


def test_verify_reports_what_cannot_be_built():
    missing = EncoderSpec(
        name="needs-pkg",
        level="patch",
        embed_dim=8,
        loader="no_such_package.model:load",
        architecture="no_such_package.model:architecture",
        dependencies=("no-such-package>=1",),
    )
    report = verify_encoder(missing)
    assert report["built"] is False and report["ok"] is None
    assert "no_such_package" in report["note"] and "pip install 'no-such-package>=1'" in report["note"]
    remote = verify_encoder(
        EncoderSpec(name="remote", level="slide", embed_dim=8, loader="m:load", requires="x")
    )
    assert remote["built"] is False and "declares no architecture" in remote["note"]


def test_grid_step():
    coords = torch.tensor([[0, 0], [512, 0], [1536, 512]])
    assert grid_step(coords) == 512
    with pytest.raises(FusecpathError, match="patch_size_level0"):
        grid_step(torch.tensor([[10, 10]]))
