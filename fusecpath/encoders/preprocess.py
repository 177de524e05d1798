"""Turn the pixels of a read patch into an encoder's input as the FM's authors do.

The reference is the authors' own pipeline: a PIL image resized in uint8 with PIL's filter, centre
cropped, then ``ToTensor`` and ``Normalize``. Here the same steps run on uint8 tensors: on the CPU,
torch's antialiased uint8 resize (PIL's filters, horizontal pass then vertical, uint8 in between); on
other devices, the same two passes in float with PIL's rounding to uint8 after each. Either way the
input matches the reference to within the tolerance of docs/preprocessing.md, and the pixels stay
uint8 until ToTensor and Normalize, folded into one affine map a channel (torchvision's values to
within float rounding).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from fusecpath.zoo import EncoderSpec

# PIL's NEAREST samples pixel floor((i + 0.5) * scale): torch's "nearest-exact", not "nearest".
_MODES = {"bilinear": "bilinear", "bicubic": "bicubic", "nearest": "nearest-exact"}
CACHE_BYTES = 1 << 20  # of a float plane normalised at once on the CPU (about one core's L2)


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


def resize(x: torch.Tensor, size: int, interpolation: str, in_float: bool | None = None) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> uint8 (B, 3, size, size), as PIL's ``Image.resize`` with that filter;
    ``in_float`` (default: off the CPU) takes the float path."""
    if x.shape[-2:] == (size, size):
        return x
    mode = _MODES[interpolation]
    antialias = mode != "nearest-exact"
    if in_float is None:
        in_float = x.device.type != "cpu"
    if not in_float or not antialias:
        return F.interpolate(x, size=(size, size), mode=mode, antialias=antialias)
    return resize_in_float(x, size, mode)


def resize_in_float(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """The resize for devices without a uint8 antialiased one (CUDA): PIL's two passes, horizontal
    then vertical, in float, each rounded half up to uint8 as PIL rounds its intermediate image."""
    y = x.float()
    for shape in ((y.shape[-2], size), (size, size)):
        y = F.interpolate(y, size=shape, mode=mode, antialias=True).add_(0.5).floor_().clamp_(0, 255)
    return y.to(torch.uint8)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision's ``CenterCrop`` on a square: the offset rounds half to even, like theirs."""
    h, w = x.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top : top + size, left : left + size]


def normalise(x: torch.Tensor, spec: EncoderSpec, out: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 -> ToTensor then Normalize, folded into one affine map a channel,
    ``x * (1 / (255 std)) - mean / std`` (torchvision's to within float rounding), into ``out`` (a
    float32 tensor of x's shape, reused across batches: fresh large buffers cost page faults) or a new
    one; float input in [0, 1]: Normalize only."""
    if x.dtype != torch.uint8:
        mean = torch.tensor(spec.mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(spec.std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std
    scale, bias = _affine(tuple(spec.mean), tuple(spec.std))
    if out is None or out.shape != x.shape:
        out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    step = _patches_in_cache(x) if x.device.type == "cpu" else len(x)
    for i in range(0, len(x), step):
        pixels, into = x[i : i + step], out[i : i + step]
        for c in range(x.shape[1]):  # a plane at a time with scalars: faster than broadcasting (1, 3, 1, 1)
            into[:, c].copy_(pixels[:, c]).mul_(scale[c]).add_(bias[c])
    return out


def _patches_in_cache(x: torch.Tensor) -> int:
    """Patches normalised together on the CPU: a float plane of about CACHE_BYTES, so that the scale and
    bias passes find it in cache rather than in memory (a third faster on 256-px patches)."""
    return max(1, CACHE_BYTES // (4 * x.shape[-2] * x.shape[-1]))


@functools.cache
def _affine(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[list[float], list[float]]:
    """(1 / (255 std), -mean / std) a channel."""
    return [1.0 / (255.0 * s) for s in std], [-m / s for m, s in zip(mean, std, strict=True)]


def denormalise(x: torch.Tensor, spec: EncoderSpec) -> torch.Tensor:
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x * std + mean


def preprocess(
    patches: torch.Tensor, spec: EncoderSpec, in_float: bool | None = None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """uint8 patches as read (read_px square, on any device) -> the normalised float32 input
    (B, 3, input_px, input_px): resize to ``resize_px`` (or straight to ``input_px``), centre-crop to
    ``input_px`` when ``crop``, then ToTensor and Normalize with the spec's mean and std. ``in_float``:
    see ``resize``; ``out``: see ``normalise``."""
    if spec.input_px is None:
        raise ValueError(f"{spec.name} is a slide encoder: it takes features, not pixels")
    x = to_uint8(patches)
    if spec.crop:
        x = resize(x, spec.resize_px or spec.input_px, spec.interpolation, in_float)
        x = center_crop(x, spec.input_px)
    else:
        x = resize(x, spec.input_px, spec.interpolation, in_float)
    return normalise(x, spec, out)
