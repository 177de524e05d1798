"""CHIEF's slide aggregator, with the parameter names of its published checkpoint.

``attention_net`` = Linear(768, 512), ReLU, Dropout, gated attention (tanh and sigmoid branches to 256,
then 1 logit per patch). The slide embedding is ``softmax(logits) @ features``: the attention-weighted
mean of the input CTransPath features (768-d), the "WSI_feature" of the authors' current code. The
classifier heads and the text projection are kept so the checkpoint loads strictly; they are unused.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fusecpath.encoders.loading import build_from_checkpoint
from fusecpath.zoo import EncoderSpec


class GatedAttention(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.attention_a = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Dropout(0.25))
        self.attention_b = nn.Sequential(nn.Linear(dim, hidden), nn.Sigmoid(), nn.Dropout(0.25))
        self.attention_c = nn.Linear(hidden, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.attention_c(self.attention_a(h) * self.attention_b(h))


class AttentionHead(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, 1)


class CHIEF(nn.Module):
    """(N, 768) CTransPath features [+ coords, unused] -> (768,) slide embedding."""

    def __init__(self, size: tuple[int, int, int] = (768, 512, 256), n_classes: int = 2):
        super().__init__()
        dim, hidden, attn = size
        self.attention_net = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(0.25), GatedAttention(hidden, attn)
        )
        self.classifiers = nn.Linear(hidden, n_classes)
        self.instance_classifiers = nn.ModuleList(nn.Linear(hidden, 2) for _ in range(n_classes))
        self.att_head = AttentionHead(hidden, attn)
        self.text_to_vision = nn.Sequential(nn.Linear(768, hidden), nn.ReLU(), nn.Dropout(0.25))

    def attention(self, features: torch.Tensor) -> torch.Tensor:
        """Softmax attention over the patches, (N,)."""
        return torch.softmax(self.attention_net(features).squeeze(-1), dim=0)

    def forward(self, features: torch.Tensor, coords: torch.Tensor | None = None) -> torch.Tensor:
        return self.attention(features) @ features


def architecture(spec: EncoderSpec) -> CHIEF:
    return CHIEF(tuple(spec.arch["size"]), spec.arch["n_classes"])


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    """The checkpoint's ``organ_embedding`` (for CHIEF's text branch) is left out."""
    return build_from_checkpoint(
        spec,
        weights,
        architecture,
        lambda state, _: {k: v for k, v in state.items() if k != "organ_embedding"},
    )
