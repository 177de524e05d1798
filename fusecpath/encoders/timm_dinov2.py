"""timm ViTs whose checkpoint may be in timm's layout or in DINOv2's own (as DINOv2 training saves it).

DINOv2's layout differs from timm's in three ways, undone by ``from_dinov2``: register tokens are
``register_tokens`` (timm: ``reg_token``); with registers, DINOv2's position embedding includes the CLS
position while timm's covers the patches only, so the (constant) CLS position is added to the CLS token;
the fused SwiGLU is ``mlp.w12``/``mlp.w3`` (timm: ``mlp.fc1``/``mlp.fc2``). ``mask_token`` (training only)
is dropped. A checkpoint already in timm's layout passes unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from fusecpath.encoders import timm_vit
from fusecpath.zoo import EncoderSpec


def from_dinov2(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """DINOv2 key names and token layout -> timm's (a no-op for a timm checkpoint)."""
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


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    """``timm_vit.load`` with the checkpoint mapped from DINOv2's layout when it is in it."""
    return timm_vit.load(spec, device, weights, convert=from_dinov2)
