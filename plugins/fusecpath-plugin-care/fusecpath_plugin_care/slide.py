"""CARE, built from its Hub repo's own code; fusecpath only adapts the call."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fusecpath.encoders.remote import SlideEncoder, grid_step, load_remote_model
from fusecpath.zoo import EncoderSpec


def care_call(
    model: nn.Module, features: torch.Tensor, coords: torch.Tensor, patch_size_level0: int | None
) -> torch.Tensor:
    """``model(features[1, N, D], N, grid coords[1, N, 2]).wsi_embedding``; grid = level-0 coords // size."""
    size = int(patch_size_level0 or grid_step(coords[0]))
    grid = torch.div(coords, size, rounding_mode="floor").long()
    lengths = torch.full((features.shape[0],), features.shape[1], dtype=torch.long, device=features.device)
    return model(features, lengths, grid).wsi_embedding


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    return SlideEncoder(load_remote_model(spec, weights), care_call)
