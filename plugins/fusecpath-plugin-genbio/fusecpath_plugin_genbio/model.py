"""GenBio-PathFM's architecture, with the parameter names of its published ``model.pth``.

A ViT on one-channel images: patch embedding, CLS and storage tokens, blocks of pre-norm attention with
2-D rotary position embedding on the patch tokens (periods ``rope_base ** (2i / (head_dim / 2))``,
patch centres normalised to [-1, 1] per axis, computed in ``rope_dtype`` as the authors do), SwiGLU
FFN, LayerScale, final LayerNorm. An RGB image is three one-channel images; their CLS tokens are
concatenated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fusecpath.encoders.loading import build_from_checkpoint
from fusecpath.zoo import EncoderSpec

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Rope2d(nn.Module):
    def __init__(self, head_dim: int, base: float, dtype: torch.dtype):
        super().__init__()
        exponents = 2 * torch.arange(head_dim // 4, dtype=dtype) / (head_dim // 2)
        self.register_buffer("periods", base**exponents, persistent=True)

    def forward(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        kw = {"device": self.periods.device, "dtype": self.periods.dtype}
        ys = torch.arange(0.5, h, **kw) / h
        xs = torch.arange(0.5, w, **kw) / w
        coords = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).flatten(0, 1) * 2.0 - 1.0
        angles = 2 * math.pi * coords[:, :, None] / self.periods[None, None, :]  # (HW, 2, head_dim / 4)
        angles = angles.flatten(1, 2).tile(2)  # (HW, head_dim)
        return torch.sin(angles), torch.cos(angles)


def _rotate(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def _with_rope(t: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """Rotate the patch tokens of (B, heads, N, head_dim); like the authors, the whole tensor passes
    through the RoPE dtype and back."""
    dtype, prefix = t.dtype, t.shape[2] - sin.shape[0]
    t = t.to(sin.dtype)
    return torch.cat([t[:, :, :prefix], _rotate(t[:, :, prefix:], sin, cos)], dim=2).to(dtype)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = (_with_rope(t, *rope) for t in (q, k))
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden)
        self.w2 = nn.Linear(dim, hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w3(F.silu(self.w1(x)) * self.w2(x))


class LayerScale(nn.Module):
    def __init__(self, dim: int, value: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, qkv_bias: bool, layerscale: float, eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias)
        self.ls1 = LayerScale(dim, layerscale)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = SwiGLU(dim, hidden)
        self.ls2 = LayerScale(dim, layerscale)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), rope))
        return x + self.ls2(self.mlp(self.norm2(x)))


def swiglu_hidden(dim: int, ratio: float, align: int) -> int:
    """Two thirds of the MLP width, rounded up to a multiple of ``align``."""
    d = int(dim * ratio * 2 / 3)
    return d + (-d % align)


class ChannelViT(nn.Module):
    """(B, 3, H, W) normalised RGB -> (B, 3 * embed_dim): per-channel CLS tokens, R then G then B."""

    def __init__(
        self,
        patch_size: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        ffn_ratio: float,
        ffn_align: int,
        storage_tokens: int,
        qkv_bias: bool,
        layerscale: float,
        rope_base: float,
        rope_dtype: str,
        norm_eps: float,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(1, embed_dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.storage_tokens = nn.Parameter(torch.zeros(1, storage_tokens, embed_dim))
        self.rope_embed = Rope2d(embed_dim // num_heads, rope_base, DTYPES[rope_dtype])
        hidden = swiglu_hidden(embed_dim, ffn_ratio, ffn_align)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, hidden, qkv_bias, layerscale, norm_eps) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)

    def channel_cls(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) -> (N, embed_dim), the final-norm CLS token."""
        patches = self.patch_embed.proj(x)
        h, w = patches.shape[-2:]
        tokens = torch.cat(
            [
                self.cls_token.expand(len(x), -1, -1),
                self.storage_tokens.expand(len(x), -1, -1),
                patches.flatten(2).transpose(1, 2),
            ],
            dim=1,
        )
        rope = self.rope_embed(h, w)
        for block in self.blocks:
            tokens = block(tokens, rope)
        return self.norm(tokens)[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return self.channel_cls(x.reshape(b * c, 1, h, w)).reshape(b, -1)


def architecture(spec: EncoderSpec) -> ChannelViT:
    arch: Mapping[str, Any] = spec.arch
    return ChannelViT(**arch)


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    return build_from_checkpoint(spec, weights, architecture)
