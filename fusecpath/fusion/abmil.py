"""Gated attention-based MIL pooling (Ilse et al., 2018): 512 -> 128 -> 1."""

from __future__ import annotations

import torch
from torch import nn


class AttentionPool(nn.Module):
    """(B, T, D) tokens -> (B, D) pooled, plus (B, T) attention weights (softmax over each bag's tokens)."""

    def __init__(self, dim: int = 512, attn_dim: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.value = nn.Sequential(nn.Linear(dim, attn_dim), nn.Tanh(), nn.Dropout(dropout))
        self.gate = nn.Sequential(nn.Linear(dim, attn_dim), nn.Sigmoid(), nn.Dropout(dropout))
        self.score = nn.Linear(attn_dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.score(self.value(x) * self.gate(x)).squeeze(-1)
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        return torch.einsum("bt,btd->bd", weights, x), weights
