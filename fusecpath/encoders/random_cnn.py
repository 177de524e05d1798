"""random-cnn: a timm CNN with seeded random weights, the untrained-network baseline."""

from __future__ import annotations

import timm
import torch
from torch import nn

from fusecpath.zoo import EncoderSpec


def load(spec: EncoderSpec, device: str = "cpu", weights: None = None) -> nn.Module:
    """The same weights for the same seed and torch version; global average pooled features."""
    arch = dict(spec.arch)
    seed = arch.pop("seed", 0)
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model = timm.create_model(arch.pop("model_name"), pretrained=False, num_classes=0, **arch)
    if model.num_features != spec.embed_dim:
        raise ValueError(
            f"{spec.name}: model gives {model.num_features} features, spec says {spec.embed_dim}"
        )
    return model
