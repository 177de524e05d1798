"""mean-<patch fm>: the simplest slide encoder, the mean of a slide's patch features."""

from __future__ import annotations

import torch
from torch import nn

from fusecpath.zoo import EncoderSpec


class MeanPool(nn.Module):
    """(N, D) patch features and (N, 2) coords -> (D,)."""

    def forward(self, features: torch.Tensor, coords: torch.Tensor | None = None) -> torch.Tensor:
        return features.float().mean(0)


def architecture(spec: EncoderSpec) -> nn.Module:
    return MeanPool()


def load(spec: EncoderSpec, device: str = "cpu", weights: None = None) -> nn.Module:
    return MeanPool()
