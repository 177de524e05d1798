"""MUSK's image branch, built by the ``musk`` package (which registers ``musk_large_patch16_384`` in timm)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fusecpath.encoders.loading import build_from_checkpoint
from fusecpath.encoders.remote import require
from fusecpath.encoders.verify import ArchitectureUnavailable
from fusecpath.zoo import EncoderSpec


class MuskVision(nn.Module):
    """(B, 3, 384, 384) -> (B, 1024): the vision CLS token of MUSK's forward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(image=x, with_head=False, out_norm=False, ms_aug=False, return_global=True)[0]


def _create(spec: EncoderSpec) -> nn.Module:
    import timm

    require(spec, "musk.modeling")  # registers the architecture with timm
    return timm.create_model(spec.arch["model_name"], pretrained=False)


def architecture(spec: EncoderSpec) -> nn.Module:
    try:
        return MuskVision(_create(spec))
    except Exception as exc:  # noqa: BLE001 - any failure to build means: not buildable here
        raise ArchitectureUnavailable(f"architecture is in the musk package ({exc})") from None


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    """Every parameter must be in the checkpoint; its extra tensors (the text branch's) are ignored."""
    require(spec, "musk.modeling")  # before the weights: the package is what a user most often lacks
    return MuskVision(build_from_checkpoint(spec, weights, _create, strict=False))
