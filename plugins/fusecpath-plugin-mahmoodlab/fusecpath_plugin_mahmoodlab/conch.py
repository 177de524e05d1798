"""CONCH and CONCH v1.5 image towers: a timm ViT trunk, a one-query attentional pooler, a LayerNorm.

The embedding is CONCH's ``encode_image(proj_contrast=False, normalize=False)``: the trunk's tokens
(after its final norm) are pooled by one learned query, then layer-normalised. No contrastive
projection, no L2 normalisation. ``spec.arch``:

- ``trunk``: timm kwargs of the ViT (see fusecpath.encoders.timm_vit);
- ``pooler``: ``"mha"`` (CONCH v1: ``nn.MultiheadAttention`` with separate key/value widths) or
  ``"linear"`` (CONCH v1.5: bias-free ``to_q``/``to_kv``/``to_out``);
- ``heads``: pooler heads; ``prefix``: where the image tower sits in the checkpoint (``"visual."`` in
  CONCH v1's full CoCa checkpoint, ``""`` in CONCH v1.5's ``pytorch_model_vision.bin``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fusecpath.encoders.loading import State, build_from_checkpoint
from fusecpath.encoders.timm_vit import create_trunk
from fusecpath.zoo import EncoderSpec

_KEEP = ("trunk.", "attn_pool_contrast.", "ln_contrast.")


class MHAPooler(nn.Module):
    """CONCH v1's attentional pooler: learned queries attend over layer-normalised tokens."""

    def __init__(self, dim: int, context_dim: int, heads: int, queries: int = 1):
        super().__init__()
        self.query = nn.Parameter(torch.randn(queries, dim))
        self.attn = nn.MultiheadAttention(dim, heads, kdim=context_dim, vdim=context_dim, batch_first=True)
        self.ln_q = nn.LayerNorm(dim)
        self.ln_k = nn.LayerNorm(context_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        kv = self.ln_k(tokens)
        q = self.ln_q(self.query).unsqueeze(0).expand(tokens.shape[0], -1, -1)
        return self.attn(q, kv, kv, need_weights=False)[0]


class LinearPooler(nn.Module):
    """CONCH v1.5's attentional pooler: the same computation with bias-free linear projections."""

    def __init__(self, dim: int, context_dim: int, heads: int, queries: int = 1):
        super().__init__()
        self.heads = heads
        self.query = nn.Parameter(torch.randn(queries, dim))
        self.ln_q = nn.LayerNorm(dim)
        self.ln_k = nn.LayerNorm(context_dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch = tokens.shape[0]
        q = self.to_q(self.ln_q(self.query)).expand(batch, -1, -1)
        k, v = self.to_kv(self.ln_k(tokens)).chunk(2, dim=-1)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).flatten(2))


POOLERS = {"mha": MHAPooler, "linear": LinearPooler}


class CoCaImageTower(nn.Module):
    """(B, 3, H, W) -> (B, dim): trunk tokens, one-query attentional pooling, LayerNorm."""

    def __init__(self, trunk: nn.Module, pooler: nn.Module, dim: int):
        super().__init__()
        self.trunk = trunk
        self.attn_pool_contrast = pooler
        self.ln_contrast = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.trunk.forward_features(x)
        return self.ln_contrast(self.attn_pool_contrast(tokens)[:, 0])


def architecture(spec: EncoderSpec) -> CoCaImageTower:
    trunk = create_trunk(spec.arch["trunk"])
    pooler = POOLERS[spec.arch["pooler"]](spec.embed_dim, trunk.num_features, spec.arch["heads"])
    return CoCaImageTower(trunk, pooler, spec.embed_dim)


def interpolate_pos_embed(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """A (1, 1 + g*g, D) embedding on a ``grid`` x ``grid`` patch grid, as CONCH v1.5's iBOT ViT
    interpolates it at run time (bicubic, scale factor (grid + 0.1) / g)."""
    cls, patches = pos_embed[:, :1], pos_embed[:, 1:]
    old = math.isqrt(patches.shape[1])
    if old == grid:
        return pos_embed
    scale = (grid + 0.1) / old
    image = patches.reshape(1, old, old, -1).permute(0, 3, 1, 2)
    image = F.interpolate(image.float(), scale_factor=(scale, scale), mode="bicubic")
    return torch.cat([cls, image.permute(0, 2, 3, 1).reshape(1, grid * grid, -1).to(pos_embed.dtype)], dim=1)


def tower_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The image tower's tensors, without the caption pooler, projection or text towers."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith(prefix) and key[len(prefix) :].startswith(_KEEP):
            out[key[len(prefix) :]] = value
    return out


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    def convert(state: State, model: CoCaImageTower) -> State:
        state = tower_state(state, spec.arch.get("prefix", ""))
        if "trunk.pos_embed" in state:
            grid = model.trunk.patch_embed.grid_size[0]
            state["trunk.pos_embed"] = interpolate_pos_embed(state["trunk.pos_embed"], grid)
        return state

    return build_from_checkpoint(spec, weights, architecture, convert)
