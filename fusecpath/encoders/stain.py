"""hed-stain: colour statistics after hematoxylin-eosin-DAB colour deconvolution."""

from __future__ import annotations

import torch
from torch import nn

from fusecpath.encoders.preprocess import denormalise
from fusecpath.zoo import EncoderSpec

# Ruifrok & Johnston (2001) stain vectors: optical density of H, E and DAB in R, G, B.
RGB_FROM_HED = torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
QUANTILES = torch.tensor([0.1, 0.5, 0.9])
HIST_BINS = 8
HIST_MAX = 1.5  # optical density at which the last histogram bin starts


class StainStatistics(nn.Module):
    """(B, 3, H, W) normalised RGB -> (B, 32): per stain mean, std and 3 quantiles (15),
    8-bin histograms of H and E (16), and the tissue fraction (1)."""

    def __init__(self, spec: EncoderSpec):
        super().__init__()
        self.spec = spec
        rgb_from_hed = RGB_FROM_HED / RGB_FROM_HED.norm(dim=1, keepdim=True)
        self.register_buffer("hed_from_rgb", torch.linalg.inv(rgb_from_hed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = denormalise(x.float(), self.spec).clamp(1.0 / 255.0, 1.0)
        od = -torch.log10(rgb).flatten(2).transpose(1, 2)  # (B, P, 3)
        hed = (od @ self.hed_from_rgb).clamp_min(0.0)  # (B, P, 3)
        stats = [hed.mean(1), hed.std(1)]
        stats.append(torch.quantile(hed, QUANTILES.to(hed), dim=1).permute(1, 0, 2).flatten(1))
        edges = torch.linspace(0.0, HIST_MAX, HIST_BINS + 1, device=x.device)[1:-1]
        for channel in (0, 1):
            bins = torch.bucketize(hed[..., channel].contiguous(), edges)
            stats.append(nn.functional.one_hot(bins, HIST_BINS).float().mean(1))
        stats.append((od.sum(-1) > 0.3).float().mean(1, keepdim=True))
        return torch.cat(stats, dim=1)


def load(spec: EncoderSpec, device: str = "cpu", weights: None = None) -> nn.Module:
    return StainStatistics(spec)
