"""COBRA from the authors' ``cobra`` package: ``Cobra(**spec.arch)`` and the repo's state dict, loaded strictly.

``Cobra.forward`` takes (1, N, D) tile embeddings and returns the attention-weighted sum of them (1, D).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fusecpath.encoders.loading import build_from_checkpoint
from fusecpath.encoders.remote import require
from fusecpath.encoders.verify import ArchitectureUnavailable
from fusecpath.zoo import EncoderSpec, to_jsonable


class CobraSlide(nn.Module):
    """(N, D) tile embeddings (+ unused coords) -> (D,)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, coords: torch.Tensor | None = None, patch_size_level0=None):
        return self.model(features[None].float()).reshape(-1)


def architecture(spec: EncoderSpec) -> CobraSlide:
    try:
        from cobra.model.cobra import Cobra
    except ImportError as exc:
        deps = " ".join(f"'{d}'" for d in spec.dependencies)
        raise ArchitectureUnavailable(
            f"architecture is the Cobra class of the authors' package ({exc.name} is missing; "
            f"`pip install {deps}`, CUDA only)"
        ) from None
    return CobraSlide(Cobra(**to_jsonable(spec.arch)))


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    require(spec, "cobra.model.cobra")  # before the weights: the package is what a user most often lacks
    convert = lambda state, _: {f"model.{k}": v for k, v in state.items()}  # noqa: E731
    return build_from_checkpoint(spec, weights, architecture, convert).eval()
