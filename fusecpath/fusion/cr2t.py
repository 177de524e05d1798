"""CR²T re-embedding: attention within clusters and across clusters, never across slides.

Tokens arrive as (B, K, n, D): B bags (one slide each), K clusters, n patches a cluster. Every attention
below is computed per bag (batched matrix products over the bag dimension), so a bag's output depends
on that bag's tokens only; the official code flattened bags together in its cross-region attention.
"""

from __future__ import annotations

import torch
from torch import nn


def _heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(..., T, D) -> (..., H, T, D / H)."""
    *lead, t, d = x.shape
    return x.reshape(*lead, t, n_heads, d // n_heads).transpose(-3, -2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """(..., H, T, d) -> (..., T, H * d)."""
    *lead, h, t, d = x.shape
    return x.transpose(-3, -2).reshape(*lead, t, h * d)


class ClusterAttention(nn.Module):
    """C-MSA: multi-head self-attention among the patches of one cluster, with a convolutional
    positional term added to the attention logits (a 1-D convolution along the query axis, per head)."""

    def __init__(self, dim: int, n_heads: int = 8, kernel: int = 15, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"hidden size {dim} is not divisible by {n_heads} heads")
        self.n_heads = n_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.pos = nn.Conv2d(n_heads, n_heads, (kernel, 1), padding=(kernel // 2, 0), groups=n_heads)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, k, n, d = x.shape
        q, kk, v = (_heads(t, self.n_heads) for t in self.qkv(x.reshape(b * k, n, d)).chunk(3, -1))
        logits = q @ kk.transpose(-1, -2) * (q.shape[-1] ** -0.5)  # (B*K, H, n, n)
        logits = logits + self.pos(logits)
        attn = self.drop(torch.softmax(logits, -1))
        return self.out(_merge(attn @ v)).reshape(b, k, n, d)


class CrossClusterAttention(nn.Module):
    """CC-MSA: learnable combine weights (D x G) summarise each cluster into G tokens (softmax over the
    cluster's patches), the bag's K x G summaries attend to each other, and min-max normalised dispatch
    weights (the same logits, scaled to [0, 1] over the cluster's patches) send them back."""

    def __init__(self, dim: int, n_heads: int = 8, n_summaries: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.combine = nn.Parameter(torch.randn(dim, n_summaries) * dim**-0.5)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, k, n, d = x.shape
        g = self.combine.shape[1]
        logits = x @ self.combine  # (B, K, n, G)
        summaries = torch.einsum("bkng,bknd->bkgd", torch.softmax(logits, 2), x).reshape(b, k * g, d)
        q, kk, v = (_heads(t, self.n_heads) for t in self.qkv(summaries).chunk(3, -1))  # (B, H, K*G, d)
        attn = self.drop(torch.softmax(q @ kk.transpose(-1, -2) * (q.shape[-1] ** -0.5), -1))
        attended = _merge(attn @ v).reshape(b, k, g, d)
        low, high = logits.amin(2, keepdim=True), logits.amax(2, keepdim=True)
        dispatch = (logits - low) / (high - low + 1e-6)
        return self.out(torch.einsum("bkng,bkgd->bknd", dispatch, attended) / g)


class CR2TBlock(nn.Module):
    """Pre-norm residual C-MSA then CC-MSA. With ``layer_scale`` each branch's output is multiplied by a
    learnable per-channel gain starting at that value (LayerScale, Touvron et al. 2021): the block starts
    close to the identity and brings in context only as far as training asks for it."""

    def __init__(
        self,
        dim: int,
        n_heads: int = 8,
        kernel: int = 15,
        n_summaries: int = 3,
        dropout: float = 0.0,
        layer_scale: float | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.within = ClusterAttention(dim, n_heads, kernel, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.across = CrossClusterAttention(dim, n_heads, n_summaries, dropout)
        gains = (torch.full((dim,), float(layer_scale)) for _ in range(2)) if layer_scale is not None else ()
        self.gains = nn.ParameterList(nn.Parameter(g) for g in gains)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        within, across = (self.gains[0], self.gains[1]) if len(self.gains) else (1.0, 1.0)
        x = x + within * self.within(self.norm1(x))
        return x + across * self.across(self.norm2(x))
