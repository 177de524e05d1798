"""The fused model (CR²T + ABMIL + collaborative distillation heads) and the baselines' models.

``FusedModel.config`` is a JSON-able dict that rebuilds the model (``FusedModel.from_config``); the
weights, including the feature standardisation, live in its state_dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fusecpath.checkpoint.folder import CheckpointMixin
from fusecpath.fusion.abmil import AttentionPool
from fusecpath.fusion.cr2t import CR2TBlock, OfficialBlock

ARCH_DEFAULTS: dict[str, Any] = {
    "cr2t": "fusecpath",  # "official": the official code's windows, CR-MSA and dispatch (cr2t.py)
    "pool": "gated",  # ABMIL: "gated" or "relu" (non-gated, no biases: the official pooling)
    "feature_norm": "balanced",  # "balanced": z-score + per-FM variance balance; "none": as official
    "init": "torch",  # "xavier": the official Xavier-normal Linear/Conv weights, zero biases
    "region_num": 8,  # official form: windows per grid side
    "top_k": 16,  # official form: keys each query keeps
    "hidden": 512,
    "attn_dropout": 0.1,
    "n_heads": 8,
    "dropout": 0.25,
    "kernel": 15,
    "n_blocks": 1,
    "n_summaries": 3,
    "attn_dim": 128,
    "layer_scale": None,  # CR²T branch gains' start (LayerScale); None: no gains, as the paper
    "final_norm": "none",  # "layer": R²T's LayerNorm on the re-embedded tokens before pooling (official)
    "cluster_prior": "size",  # "size": attention weighs each cluster slot by its share of the slide; "none"
    "proj": "linear",  # input projection: "linear" (Linear, Dropout) or "relu" (Linear, ReLU, Dropout: paper)
}
# the paper's input projection and pooling; a config saved before one of these keys existed had its value
PAPER_POOLING: dict[str, Any] = {
    "final_norm": "layer",
    "cluster_prior": "none",
    "proj": "relu",
}
# ``fuse --cr2t official``: the official re-embedding and pooling (feature_norm / init stay separate)
OFFICIAL_ARCH: dict[str, Any] = {"cr2t": "official", "pool": "relu", **PAPER_POOLING}
FINAL_NORMS = ("none", "layer")
CLUSTER_PRIORS = ("size", "none")
PROJECTIONS = ("linear", "relu")


class Standardise(nn.Module):
    """x -> (x - mean) / std with statistics set from training data (kept in the state_dict).

    With ``blocks`` (the dims of concatenated FMs) each FM's block is further scaled so that every FM
    carries the same total variance: a 512-d FM does not drown a 32-d one at initialisation.
    """

    def __init__(self, dim: int, blocks: list[int] | None = None, enabled: bool = True) -> None:
        super().__init__()
        self.enabled = enabled  # False: the identity (statistics are still fitted and saved)
        blocks = blocks or [dim]
        if sum(blocks) != dim:
            raise ValueError(f"FM dims {blocks} do not add up to {dim}")
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        balance = torch.cat([torch.full((b,), (dim / (len(blocks) * b)) ** 0.5) for b in blocks])
        self.register_buffer("balance", balance, persistent=False)

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).double()
        self.mean.copy_(x.mean(0).float())
        self.std.copy_(x.std(0).clamp_min(1e-6).float() if len(x) > 1 else torch.ones_like(self.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std * self.balance if self.enabled else x


def xavier_init(module: nn.Module) -> None:
    """The official initialisation: Xavier-normal Linear and Conv weights, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@dataclass
class FusedOutput:
    logits: torch.Tensor  # (B, n_outputs)
    attention: torch.Tensor  # (B, K * n): ABMIL weights of the bag's tokens
    teacher_logits: list[torch.Tensor] = field(default_factory=list)  # one (B, n_outputs) per slide FM


class FusedModel(nn.Module, CheckpointMixin):
    """Concatenated patch FMs -> Linear/ReLU/Dropout -> CR²T blocks -> [LayerNorm] -> ABMIL -> head;
    slide FMs -> own Linear -> the same head (the collaborative-distillation teachers)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        arch = {**ARCH_DEFAULTS, **config.get("arch", {})}
        self.config = {**config, "arch": arch}  # every key resolved, so a saved config stays exact
        hidden, n_out = arch["hidden"], int(config["n_outputs"])
        dims = [int(fm["embed_dim"]) for fm in config["patch_fms"]]
        in_dim = sum(dims)
        if arch["feature_norm"] not in ("balanced", "none"):
            raise ValueError(f"arch feature_norm is 'balanced' or 'none', not {arch['feature_norm']!r}")
        self.norm = Standardise(in_dim, dims, enabled=arch["feature_norm"] == "balanced")
        if arch["proj"] not in PROJECTIONS:
            raise ValueError(f"arch proj is 'linear' or 'relu', not {arch['proj']!r}")
        act = nn.ReLU() if arch["proj"] == "relu" else nn.Identity()  # Identity keeps the state_dict keys
        self.proj = nn.Sequential(nn.Linear(in_dim, hidden), act, nn.Dropout(arch["dropout"]))
        self.official = arch["cr2t"] == "official"
        if arch["cr2t"] not in ("fusecpath", "official"):
            raise ValueError(f"arch cr2t is 'fusecpath' or 'official', not {arch['cr2t']!r}")
        shared = (hidden, arch["n_heads"], arch["kernel"], arch["n_summaries"], arch["attn_dropout"])
        self.blocks = nn.ModuleList(
            OfficialBlock(*shared, arch["region_num"], arch["top_k"])
            if self.official
            else CR2TBlock(*shared, arch["layer_scale"])
            for _ in range(arch["n_blocks"])
        )
        if arch["final_norm"] not in FINAL_NORMS:
            raise ValueError(f"arch final_norm is 'none' or 'layer', not {arch['final_norm']!r}")
        self.final_norm = nn.LayerNorm(hidden) if arch["final_norm"] == "layer" else nn.Identity()
        if arch["cluster_prior"] not in CLUSTER_PRIORS:
            raise ValueError(f"arch cluster_prior is 'size' or 'none', not {arch['cluster_prior']!r}")
        self.size_prior = arch["cluster_prior"] == "size"
        self.pool = AttentionPool(hidden, arch["attn_dim"], kind=arch["pool"])
        self.head = nn.Linear(hidden, n_out)
        self.teacher_norms = nn.ModuleList(
            Standardise(int(fm["embed_dim"])) for fm in config.get("slide_fms", [])
        )
        self.teachers = nn.ModuleList(
            nn.Linear(int(fm["embed_dim"]), hidden) for fm in config.get("slide_fms", [])
        )
        if arch["init"] == "xavier":
            xavier_init(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FusedModel:
        """The model a saved config describes; a config saved before one of ``PAPER_POOLING``'s keys existed
        had the paper's value of it (the pooling was the paper's)."""
        if "arch" in config:
            config = {**config, "arch": {**PAPER_POOLING, **config["arch"]}}
        return cls(config)

    def forward(
        self,
        bags: torch.Tensor,
        slide_embeddings: list[torch.Tensor] | None = None,
        shares: torch.Tensor | None = None,
    ) -> FusedOutput:
        """bags (B, K, n, D_in) -> logits; slide_embeddings (one (B, d_i) per slide FM) -> teacher logits;
        shares (B, K): the share of its slide each cluster slot stands for (``bags.slot_shares``), which
        the ``cluster_prior="size"`` pooling adds to its attention logits as log-weights (equal shares
        without it: the bag's clusters count alike)."""
        b, k, n, _ = bags.shape
        x = self.proj(self.norm(bags))
        if self.official:  # the bag's tokens in cluster order, one sequence
            x = x.reshape(b, k * n, -1)
        for block in self.blocks:
            x = block(x)
        prior = None
        if self.size_prior and shares is not None:
            prior = shares.clamp_min(1e-12).log().to(x.dtype).repeat_interleave(n, dim=1)
        pooled, attention = self.pool(self.final_norm(x).reshape(b, k * n, -1), prior=prior)
        teacher_logits = [
            self.head(proj(norm(emb)))
            for proj, norm, emb in zip(
                self.teachers, self.teacher_norms, slide_embeddings or [], strict=False
            )
        ]
        return FusedOutput(self.head(pooled), attention, teacher_logits)


class LinearModel(nn.Module):
    """Baseline: one vector a slide (mean-pooled patch features or a slide FM) -> standardise -> linear."""

    def __init__(self, in_dim: int, n_outputs: int) -> None:
        super().__init__()
        self.norm = Standardise(in_dim)
        self.head = nn.Linear(in_dim, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(x))
