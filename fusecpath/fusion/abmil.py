"""Attention-based MIL pooling (Ilse et al., 2018): 512 -> 128 -> 1, gated (tanh x sigmoid, with biases)
or, as FuseCPath's official code, non-gated (ReLU, no biases)."""

from __future__ import annotations

import torch
from torch import nn


class AttentionPool(nn.Module):
    """(B, T, D) tokens -> (B, D) pooled, plus (B, T) attention weights (softmax over each bag's tokens).

    ``kind``: "gated" (tanh branch x sigmoid gate, biases) or "relu" (Linear -> ReLU -> Linear, no biases:
    the official FuseCPath pooling)."""

    def __init__(
        self, dim: int = 512, attn_dim: int = 128, dropout: float = 0.0, kind: str = "gated"
    ) -> None:
        super().__init__()
        if kind not in ("gated", "relu"):
            raise ValueError(f"attention pooling is 'gated' or 'relu', not {kind!r}")
        gated = kind == "gated"
        act = nn.Tanh() if gated else nn.ReLU()
        self.value = nn.Sequential(nn.Linear(dim, attn_dim, bias=gated), act, nn.Dropout(dropout))
        self.gate = (
            nn.Sequential(nn.Linear(dim, attn_dim), nn.Sigmoid(), nn.Dropout(dropout)) if gated else None
        )
        self.score = nn.Linear(attn_dim, 1, bias=gated)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, prior: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``prior`` (B, T): log-weights added to the attention logits (the tokens' prior shares)."""
        hidden = self.value(x) if self.gate is None else self.value(x) * self.gate(x)
        logits = self.score(hidden).squeeze(-1)
        if prior is not None:
            logits = logits + prior
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        return torch.einsum("bt,btd->bd", weights, x), weights
