"""A ResNet cut after one stage and average-pooled, weights from the full network's checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fusecpath.encoders.loading import State, build_from_checkpoint
from fusecpath.zoo import EncoderSpec


class TruncatedResNet(nn.Module):
    """timm ResNet stages up to ``out_index`` (1 = layer1 ... 4 = layer4), then global average pooling."""

    def __init__(self, model_name: str, out_index: int):
        import timm

        super().__init__()
        self.trunk = timm.create_model(
            model_name, pretrained=False, features_only=True, out_indices=[out_index]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)[-1].mean(dim=(2, 3))


def architecture(spec: EncoderSpec) -> TruncatedResNet:
    return TruncatedResNet(spec.arch["model_name"], spec.arch["out_index"])


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    """The truncated network; the checkpoint's later stages and classifier are left out."""

    def kept_stages(state: State, model: TruncatedResNet) -> State:
        kept = {k.split(".")[0] for k in model.trunk.state_dict()}
        return {f"trunk.{k}": v for k, v in state.items() if k.split(".")[0] in kept}

    return build_from_checkpoint(spec, weights, architecture, kept_stages)
