"""KEEP's vision tower with the parameter names of its checkpoint (``visual.*``, ``visual_head.*``)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fusecpath.encoders.loading import build_from_checkpoint
from fusecpath.encoders.timm_vit import create_trunk
from fusecpath.zoo import EncoderSpec


class KeepVision(nn.Module):
    """(B, 3, 224, 224) -> (B, projection_dim): KEEP's ``encode_image``, L2-normalised ``visual_head(visual(x))``."""

    def __init__(self, arch: dict):
        super().__init__()
        trunk_arch = {k: v for k, v in arch.items() if k != "projection_dim"}
        self.visual = create_trunk(trunk_arch)
        dim = arch["projection_dim"]
        self.visual_head = nn.Sequential(
            nn.Linear(self.visual.num_features, dim), nn.GELU(), nn.Linear(dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual_head(self.visual(x)), dim=-1)


def architecture(spec: EncoderSpec) -> KeepVision:
    return KeepVision(dict(spec.arch))


def vision_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The image tower's tensors; KEEP names timm's LayerScale ``gamma`` as ``weight``."""
    out = {}
    for key, value in state.items():
        if key.startswith(("visual.", "visual_head.")):
            out[key.replace(".ls1.weight", ".ls1.gamma").replace(".ls2.weight", ".ls2.gamma")] = value
    return out


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    return build_from_checkpoint(spec, weights, architecture, lambda state, _: vision_state(state))
