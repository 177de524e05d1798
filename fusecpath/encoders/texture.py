"""gabor-texture: a fixed Gabor filter bank on standardised grey levels, blind to colour."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fusecpath.encoders.preprocess import denormalise
from fusecpath.zoo import EncoderSpec

ORIENTATIONS = 4
WAVELENGTHS = (3.0, 6.0, 12.0)  # pixels at the encoder's input size
KERNEL = 15
ORIENTATION_BINS = 8


def gabor_bank() -> torch.Tensor:
    """(2 * orientations * wavelengths, 1, K, K): even and odd Gabor kernels, zero-mean, unit L1."""
    half = KERNEL // 2
    y, x = torch.meshgrid(torch.arange(-half, half + 1.0), torch.arange(-half, half + 1.0), indexing="ij")
    kernels = []
    for wavelength in WAVELENGTHS:
        sigma = 0.56 * wavelength
        for k in range(ORIENTATIONS):
            theta = math.pi * k / ORIENTATIONS
            u = x * math.cos(theta) + y * math.sin(theta)
            envelope = torch.exp(-(x**2 + y**2) / (2 * sigma**2))
            for phase in (torch.cos, torch.sin):
                kernel = envelope * phase(2 * math.pi * u / wavelength)
                kernel = kernel - kernel.mean()
                kernels.append(kernel / kernel.abs().sum())
    return torch.stack(kernels).unsqueeze(1)


class GaborTexture(nn.Module):
    """(B, 3, H, W) normalised RGB -> (B, 32): mean and std of 12 Gabor energies (24) and a
    magnitude-weighted gradient-orientation histogram (8)."""

    def __init__(self, spec: EncoderSpec):
        super().__init__()
        self.spec = spec
        self.register_buffer("bank", gabor_bank())
        sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
        self.register_buffer("sobel", torch.stack([sobel, sobel.T]).unsqueeze(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = denormalise(x.float(), self.spec)
        grey = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).unsqueeze(1)
        grey = (grey - grey.mean((2, 3), keepdim=True)) / (grey.std((2, 3), keepdim=True) + 0.05)
        response = F.conv2d(grey, self.bank, padding=KERNEL // 2)
        energy = response.unflatten(1, (-1, 2)).pow(2).sum(2).sqrt()  # (B, 12, H, W)
        features = [energy.mean((2, 3)), energy.std((2, 3))]
        grad = F.conv2d(grey, self.sobel, padding=1)
        magnitude = grad.pow(2).sum(1).sqrt().flatten(1)
        angle = torch.atan2(grad[:, 1], grad[:, 0]).remainder(math.pi).flatten(1)
        bins = (angle / math.pi * ORIENTATION_BINS).long().clamp_(max=ORIENTATION_BINS - 1)
        hist = torch.zeros(x.shape[0], ORIENTATION_BINS, device=x.device).scatter_add_(1, bins, magnitude)
        features.append(hist / (hist.sum(1, keepdim=True) + 1e-6))
        return torch.cat(features, dim=1)


def load(spec: EncoderSpec, device: str = "cpu", weights: None = None) -> nn.Module:
    return GaborTexture(spec)
