"""OpenMidnight: a timm ViT-g/14-reg4 loaded from a checkpoint in DINOv2's own key layout."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from fusecpath.encoders import timm_vit
from fusecpath.zoo import EncoderSpec

architecture = timm_vit.architecture


def from_dinov2(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """DINOv2 names -> timm's: registers, the CLS position folded into the CLS token, fused SwiGLU.

    timm's DINOv2-with-registers model adds position embeddings to the patches only, so DINOv2's CLS
    position (a constant) is added to the CLS token once; ``mask_token`` (training only) is dropped.
    """
    state = {k: v for k, v in state.items() if k != "mask_token"}
    out: dict[str, torch.Tensor] = {}
    if "register_tokens" in state:
        pos = state.pop("pos_embed")
        out["reg_token"] = state.pop("register_tokens")
        out["cls_token"] = state.pop("cls_token") + pos[:, :1]
        out["pos_embed"] = pos[:, 1:]
    for key, value in state.items():
        key = re.sub(r"^(blocks\.\d+\.mlp)\.w12\.", r"\1.fc1.", key)
        key = re.sub(r"^(blocks\.\d+\.mlp)\.w3\.", r"\1.fc2.", key)
        out[key] = value
    return out


def build(spec: EncoderSpec, weights: Path | None = None) -> nn.Module:
    return timm_vit.build(spec, weights, convert=from_dinov2)
