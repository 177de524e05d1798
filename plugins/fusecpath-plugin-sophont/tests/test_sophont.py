"""OpenMidnight plugin: ViT-g/14-reg4 on the meta device, preprocessing, and a checkpoint in DINOv2's own
key layout (register_tokens, CLS position in pos_embed, fused w12/w3 SwiGLU) loaded offline."""

import dataclasses
import re

import pytest
import torch

import fusecpath
from fusecpath.encoders import timm_vit
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import verify_encoder
from fusecpath.testing import assert_input_close, reference_input


def test_architecture_on_meta():
    report = verify_encoder("openmidnight")
    assert report["ok"] and report["output_dim"] == 1536
    assert report["parameters"] == pytest.approx(1.13e9, rel=0.01)  # ViT-g/14, published 1.1B


def test_preprocessing():
    spec = fusecpath.get_spec("open-midnight")
    assert spec.crop and spec.mean == (0.485, 0.456, 0.406)
    patches = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8)
    assert_input_close(preprocess(patches, spec), reference_input(patches, spec), spec)


def _to_dinov2(state):
    """The inverse renaming: what a DINOv2 training run saves for this timm model."""
    out = {"mask_token": torch.zeros(1, state["cls_token"].shape[-1])}
    cls_pos = torch.randint(-512, 512, state["cls_token"].shape) / 1024  # exact in float32
    out["cls_token"] = state["cls_token"] - cls_pos
    out["pos_embed"] = torch.cat([cls_pos, state["pos_embed"]], dim=1)
    out["register_tokens"] = state["reg_token"]
    for key, value in state.items():
        if key not in ("cls_token", "pos_embed", "reg_token"):
            out[re.sub(r"\.mlp\.fc1\.", ".mlp.w12.", re.sub(r"\.mlp\.fc2\.", ".mlp.w3.", key))] = value
    return out


def test_dinov2_layout_checkpoint_round_trip(hf_cache, tmp_path):
    spec = fusecpath.get_spec("openmidnight")
    small = dataclasses.replace(spec, embed_dim=48, arch=dict(spec.arch, depth=2, embed_dim=48, num_heads=2))
    torch.manual_seed(0)
    direct = timm_vit.architecture(small).eval()
    with torch.no_grad():  # a CLS token whose sum with the CLS position is exact, so outputs match exactly
        direct.trunk.cls_token.copy_(torch.randint(-512, 512, direct.trunk.cls_token.shape) / 1024)
    native = _to_dinov2(direct.trunk.state_dict())
    assert "blocks.1.mlp.w12.weight" in native and native["pos_embed"].shape[1] == 1 + 16 * 16
    torch.save(native, tmp_path / "teacher_checkpoint_load.pt")
    hf_cache(
        "SophontAI/OpenMidnight", {"teacher_checkpoint_load.pt": tmp_path / "teacher_checkpoint_load.pt"}
    )
    loaded = fusecpath.load_encoder(small)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), direct(x))
