"""Turn the pixels of a read patch into an encoder's input as the FM's authors do.

The reference is the authors' own pipeline: a PIL image resized in uint8 with PIL's filter, centre
cropped, then ``ToTensor`` and ``Normalize``. Here the same steps run on uint8 tensors: on the CPU,
torch's antialiased uint8 resize (PIL's filters, horizontal pass then vertical, uint8 in between); on
other devices, the same two passes in float with PIL's rounding to uint8 after each. Either way the
input matches the reference to within the tolerance of docs/preprocessing.md, and the pixels stay
uint8 until the one fused scale-and-shift into the normalised float input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fusecpath.zoo import EncoderSpec

# PIL's NEAREST samples pixel floor((i + 0.5) * scale): torch's "nearest-exact", not "nearest".
_MODES = {"bilinear": "bilinear", "bicubic": "bicubic", "nearest": "nearest-exact"}


def to_uint8(patches: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) or (B, 3, H, W) -> uint8 (B, 3, H, W) (a view when already uint8).

    Float input in [0, 1] is rounded to uint8 first, as ``ToPILImage`` would."""
    if patches.ndim != 4:
        raise ValueError(f"expected a batch of images (B, H, W, 3), got shape {tuple(patches.shape)}")
    if patches.shape[-1] == 3 and patches.shape[1] != 3:
        patches = patches.permute(0, 3, 1, 2)
    if patches.dtype != torch.uint8:
        patches = patches.float().mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return patches


def resize(x: torch.Tensor, size: int, interpolation: str) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> uint8 (B, 3, size, size), as PIL's ``Image.resize`` with that filter."""
    if x.shape[-2:] == (size, size):
        return x
    mode = _MODES[interpolation]
    antialias = mode != "nearest-exact"
    if x.device.type == "cpu" or mode == "nearest-exact":
        return F.interpolate(x, size=(size, size), mode=mode, antialias=antialias or None)
    # No uint8 antialiased resize off the CPU: one axis at a time in float, rounded as PIL does.
    y = x.float()
    for shape in ((y.shape[-2], size), (size, size)):
        y = F.interpolate(y, size=shape, mode=mode, antialias=True).round_().clamp_(0, 255)
    return y.to(torch.uint8)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision's ``CenterCrop`` on a square: the offset rounds half to even, like theirs."""
    h, w = x.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top : top + size, left : left + size]


def normalise(x: torch.Tensor, spec: EncoderSpec) -> torch.Tensor:
    """uint8 or float in [0, 1] -> (x / 255 - mean) / std in float32, one fused pass from uint8."""
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    if x.dtype == torch.uint8:
        return torch.addcmul(-mean / std, x.to(torch.float32), 1.0 / (255.0 * std))
    return (x - mean) / std


def denormalise(x: torch.Tensor, spec: EncoderSpec) -> torch.Tensor:
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x * std + mean


def preprocess(patches: torch.Tensor, spec: EncoderSpec) -> torch.Tensor:
    """uint8 patches as read (read_px square, on any device) -> the normalised float32 input
    (B, 3, input_px, input_px): resize to ``resize_px`` (or straight to ``input_px``), centre-crop to
    ``input_px`` when ``crop``, then ToTensor and Normalize with the spec's mean and std."""
    if spec.input_px is None:
        raise ValueError(f"{spec.name} is a slide encoder: it takes features, not pixels")
    x = to_uint8(patches)
    if spec.crop:
        x = center_crop(resize(x, spec.resize_px or spec.input_px, spec.interpolation), spec.input_px)
    else:
        x = resize(x, spec.input_px, spec.interpolation)
    return normalise(x, spec)
