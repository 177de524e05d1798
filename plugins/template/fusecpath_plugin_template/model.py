"""The template's encoder: (B, 3, 224, 224) normalised RGB -> (B, 16)."""

import torch
from torch import nn


class EdgeEncoder(nn.Module):
    def __init__(self, embed_dim: int):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, embed_dim, kernel_size=5, stride=4, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).abs().mean(dim=(2, 3))


def build(spec):
    return EdgeEncoder(spec.embed_dim)
