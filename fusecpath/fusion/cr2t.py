"""CR²T re-embedding: attention within regions and across regions, never across slides.

Two forms (``arch["cr2t"]``; docs/method.md compares them):

- ``"fusecpath"`` (``CR2TBlock``): one region per cluster. Tokens arrive as (B, K, n, D): B bags (one
  slide each), K clusters, n patches a cluster; C-MSA within each cluster, CC-MSA across the bag's K x G
  cluster summaries jointly.
- ``"official"`` (``OfficialBlock``): the official code's regions. The bag's K * n cluster-ordered tokens
  (B, L, D) are padded to a square grid cut into square windows (``window_index``), R-MSA within each
  window, CR-MSA per summary index across the windows with a top-k mask and min-max x softmax dispatch.

Every attention is computed per bag (batched over the bag dimension), so a bag's output depends on that
bag's tokens only; the official code flattened bags together in its cross-region attention.
"""

from __future__ import annotations

import math

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


# ---------------------------------------------------------------------------------------------- official


def window_index(length: int, region_num: int = 8) -> tuple[torch.Tensor, int]:
    """The official code's regions of a ``length``-token sequence: the tokens, in order, are laid row by
    row on a square grid whose side is ceil(sqrt(length)) rounded up to a multiple of ``region_num``
    (zero tokens pad the tail), cut into region_num x region_num square windows. Returns the
    (n_windows, window_side**2) grid positions of each window and the padded length."""
    side = math.ceil(math.sqrt(length))
    side += -side % region_num
    w = side // region_num
    grid = torch.arange(side * side).reshape(region_num, w, region_num, w).permute(0, 2, 1, 3)
    return grid.reshape(region_num * region_num, w * w), side * side


def topk_mask(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Attention logits below each query's k-th largest set to the dtype's lowest value (the official
    sparse top-k); unchanged when a query has at most k keys."""
    if k is None or k >= logits.shape[-1]:
        return logits
    kth = logits.detach().topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)


class _WindowAttention(nn.Module):
    """The official inner attention: multi-head self-attention over (N, T, D) token groups, with an
    optional convolutional term on the logits (kernel along the query axis), top-k sparsity and
    dropout after the output projection."""

    def __init__(self, dim: int, n_heads: int, kernel: int | None, top_k: int | None, dropout: float) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"hidden size {dim} is not divisible by {n_heads} heads")
        self.n_heads, self.top_k = n_heads, top_k
        self.qkv = nn.Linear(dim, 3 * dim)
        self.pos = (
            nn.Conv2d(n_heads, n_heads, (kernel, 1), padding=(kernel // 2, 0), groups=n_heads)
            if kernel
            else None
        )
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, kk, v = (_heads(t, self.n_heads) for t in self.qkv(x).chunk(3, -1))
        logits = q @ kk.transpose(-1, -2) * (q.shape[-1] ** -0.5)
        if self.pos is not None:
            logits = logits + self.pos(logits)
        attn = torch.softmax(topk_mask(logits, self.top_k), -1)
        return self.drop(self.out(_merge(attn @ v)))


def _windows(x: torch.Tensor, region_num: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L, D) -> (B, n_windows, window tokens, D) over the zero-padded grid, and the window index."""
    b, length, d = x.shape
    index, padded = window_index(length, region_num)
    x = torch.cat([x, x.new_zeros(b, padded - length, d)], 1)
    return x[:, index.to(x.device)], index


def _unwindow(windows: torch.Tensor, index: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of ``_windows``, padding dropped: (B, n_windows, window tokens, D) -> (B, L, D)."""
    b, nw, p, d = windows.shape
    out = windows.new_empty(b, nw * p, d)
    out[:, index.to(windows.device).reshape(-1)] = windows.reshape(b, nw * p, d)
    return out[:, :length]


class RegionAttention(nn.Module):
    """Official R-MSA: self-attention within each square window of the padded token grid (windows cut
    across clusters and include padding), with the convolutional positional term."""

    def __init__(
        self,
        dim: int,
        n_heads: int = 8,
        kernel: int = 15,
        region_num: int = 8,
        top_k: int | None = 16,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.region_num = region_num
        self.attn = _WindowAttention(dim, n_heads, kernel, top_k, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        windows, index = _windows(x, self.region_num)
        b, nw, p, d = windows.shape
        return _unwindow(self.attn(windows.reshape(b * nw, p, d)).reshape(b, nw, p, d), index, x.shape[1])


class CrossRegionAttention(nn.Module):
    """Official CR-MSA, per slide: combine weights (D x G, softmax over a window's tokens) summarise each
    window into G tokens; for each summary index g the bag's windows' g-th summaries attend to each
    other (top-k sparse); each token gets back sum_g minmax_g * softmax_g(logits) times summary g.
    The official code ran this attention over the windows of every bag in a batch together; here
    each bag attends only to its own windows."""

    def __init__(
        self,
        dim: int,
        n_heads: int = 8,
        n_summaries: int = 3,
        region_num: int = 8,
        top_k: int | None = 16,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.region_num = region_num
        self.combine = nn.Parameter(torch.empty(dim, n_summaries))
        nn.init.kaiming_uniform_(self.combine, a=math.sqrt(5))
        self.attn = _WindowAttention(dim, n_heads, None, top_k, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        windows, index = _windows(x, self.region_num)
        b, nw, p, d = windows.shape
        logits = torch.einsum("bwpd,dg->bwgp", windows, self.combine)
        summaries = torch.einsum("bwgp,bwpd->bgwd", torch.softmax(logits, -1), windows)
        g = summaries.shape[1]
        attended = self.attn(summaries.reshape(b * g, nw, d)).reshape(b, g, nw, d)
        out = torch.einsum("bgwd,bwgp->bwpd", attended, official_dispatch(logits))
        return _unwindow(out, index, x.shape[1])


def official_dispatch(logits: torch.Tensor) -> torch.Tensor:
    """(..., G, P) combine logits -> dispatch weights: min-max over the P tokens times softmax over G."""
    low, high = logits.amin(-1, keepdim=True), logits.amax(-1, keepdim=True)
    return (logits - low) / (high - low + 1e-8) * torch.softmax(logits, -2)


class OfficialBlock(nn.Module):
    """Pre-norm residual R-MSA then CR-MSA on (B, L, D) cluster-ordered tokens, as the official code."""

    def __init__(
        self,
        dim: int,
        n_heads: int = 8,
        kernel: int = 15,
        n_summaries: int = 3,
        dropout: float = 0.0,
        region_num: int = 8,
        top_k: int | None = 16,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.within = RegionAttention(dim, n_heads, kernel, region_num, top_k, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.across = CrossRegionAttention(dim, n_heads, n_summaries, region_num, top_k, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.within(self.norm1(x))
        return x + self.across(self.norm2(x))
