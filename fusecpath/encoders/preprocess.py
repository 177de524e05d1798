"""Turn the pixels of a read patch into an encoder's input, exactly as its spec says."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fusecpath.zoo import EncoderSpec


def to_float(patches: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) or (B, 3, H, W) -> float (B, 3, H, W) in [0, 1]."""
    if patches.ndim != 4:
        raise ValueError(f"expected a batch of images (B, H, W, 3), got shape {tuple(patches.shape)}")
    if patches.shape[-1] == 3 and patches.shape[1] != 3:
        patches = patches.permute(0, 3, 1, 2)
    return patches.float().div_(255.0) if patches.dtype == torch.uint8 else patches.float()


def resize(x: torch.Tensor, size: int, interpolation: str) -> torch.Tensor:
    if x.shape[-2:] == (size, size):
        return x
    antialias = interpolation in ("bilinear", "bicubic")
    out = F.interpolate(
        x,
        size=(size, size),
        mode=interpolation,
        antialias=antialias,
        align_corners=False if antialias else None,
    )
    return out.clamp_(0.0, 1.0)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def normalise(x: torch.Tensor, spec: EncoderSpec) -> torch.Tensor:
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def denormalise(x: torch.Tensor, spec: EncoderSpec) -> torch.Tensor:
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x * std + mean


def preprocess(patches: torch.Tensor, spec: EncoderSpec) -> torch.Tensor:
    """uint8 patches as read (read_px square) -> the normalised (B, 3, input_px, input_px) input.

    Resize to ``resize_px`` (or straight to ``input_px``), centre-crop to ``input_px`` when
    ``crop``, then normalise with the spec's mean and std.
    """
    if spec.input_px is None:
        raise ValueError(f"{spec.name} is a slide encoder: it takes features, not pixels")
    x = to_float(patches)
    if spec.crop:
        x = resize(x, spec.resize_px or spec.input_px, spec.interpolation)
        x = center_crop(x, spec.input_px)
    else:
        x = resize(x, spec.input_px, spec.interpolation)
    return normalise(x, spec)
