"""A transformers CLIP image tower (``vision_model`` + ``visual_projection``) from ``spec.arch``.

The architecture is built from the spec (a ``CLIPVisionConfig``) and the repo's full ``CLIPModel``
checkpoint is loaded into it strictly, its text tower left out, so a checkpoint that is not the model
the spec describes fails with one line.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fusecpath.encoders.loading import build_from_checkpoint
from fusecpath.zoo import EncoderSpec

_TOWER = ("vision_model.", "visual_projection.")


class ClipImageTower(nn.Module):
    """(B, 3, H, W) -> (B, projection_dim): ``get_image_features``, the projected pooled CLS token."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).image_embeds


def architecture(spec: EncoderSpec) -> ClipImageTower:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    return ClipImageTower(CLIPVisionModelWithProjection(CLIPVisionConfig(**spec.arch)))


def vision_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The image tower's tensors under the wrapper's ``model.``; ``position_ids`` (a buffer older
    transformers saved) are dropped."""
    return {
        f"model.{k}": v for k, v in state.items() if k.startswith(_TOWER) and not k.endswith("position_ids")
    }


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    return build_from_checkpoint(spec, weights, architecture, lambda state, _: vision_state(state)).eval()
