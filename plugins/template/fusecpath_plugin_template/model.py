"""The template's encoder: (B, 3, 224, 224) normalised RGB -> (B, 16).

A model with weights would load them with the core's helper instead of seeding them:
``return build_from_checkpoint(spec, weights, architecture, convert)`` (fusecpath.encoders.loading).
"""

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


def architecture(spec) -> nn.Module:
    """The model without loading anything: what ``fusecpath models verify`` builds on the meta device."""
    return EdgeEncoder(spec.embed_dim)


def load(spec, device="cpu", weights=None) -> nn.Module:
    """The loader protocol: the spec, the device it will run on, an explicit weights path (None here)."""
    return architecture(spec)
