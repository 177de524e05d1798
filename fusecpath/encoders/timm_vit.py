"""Patch encoders that are timm models: build from ``spec.arch``, load the hub checkpoint, pool tokens.

A spec's ``arch`` holds ``model_name`` (a timm architecture) and the keyword arguments its authors pass
to ``timm.create_model``. Layers are named by strings so that specs stay plain data:
``mlp_layer``: "mlp" | "swiglu" | "swiglu_packed"; ``act_layer``/``norm_layer``: timm's layer names
("silu", "gelu", "layernorm", ...).

``spec.pooling`` says how tokens become one embedding (``pool_tokens``):
``cls`` the class token after the final norm; ``cls+mean`` the class token concatenated with the mean
of the patch tokens (register tokens excluded); ``mean`` the mean of the patch tokens; ``timm`` the
model's own ``forward_head``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fusecpath.encoders.loading import State, build_from_checkpoint
from fusecpath.zoo import EncoderSpec

POOLINGS = ("cls", "cls+mean", "mean", "timm")
_PREFIXES = ("module.", "model.", "backbone.", "encoder.")


def _mlp_layer(name: str) -> type[nn.Module]:
    from timm.layers import Mlp, SwiGLU, SwiGLUPacked

    layers = {"mlp": Mlp, "swiglu": SwiGLU, "swiglu_packed": SwiGLUPacked}
    try:
        return layers[name]
    except KeyError:
        raise ValueError(f"unknown mlp_layer {name!r}; use one of {', '.join(layers)}") from None


def timm_kwargs(arch: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(model_name, kwargs for ``timm.create_model``) from a spec's plain-data ``arch``."""
    kwargs = dict(arch)
    try:
        model_name = kwargs.pop("model_name")
    except KeyError:
        raise ValueError("arch needs 'model_name', a timm architecture") from None
    if isinstance(kwargs.get("mlp_layer"), str):
        kwargs["mlp_layer"] = _mlp_layer(kwargs["mlp_layer"])
    if isinstance(kwargs.get("act_layer"), str):
        from timm.layers import get_act_layer

        kwargs["act_layer"] = get_act_layer(kwargs["act_layer"])
    kwargs.setdefault("num_classes", 0)
    return model_name, kwargs


def create_trunk(arch: Mapping[str, Any]) -> nn.Module:
    """The timm model with random weights (inside ``with torch.device("meta")`` it takes no memory)."""
    import timm

    model_name, kwargs = timm_kwargs(arch)
    return timm.create_model(model_name, pretrained=False, **kwargs)


def pool_tokens(tokens: torch.Tensor, pooling: str, num_prefix_tokens: int) -> torch.Tensor:
    """(B, T, D) tokens from ``forward_features`` -> (B, D) or (B, 2D) for ``cls+mean``."""
    if pooling == "cls":
        return tokens[:, 0]
    patches = tokens[:, num_prefix_tokens:]
    if pooling == "mean":
        return patches.mean(1)
    if pooling == "cls+mean":
        return torch.cat([tokens[:, 0], patches.mean(1)], dim=-1)
    raise ValueError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")


class PooledViT(nn.Module):
    """A timm ViT ``trunk`` whose tokens are pooled into one embedding per image."""

    def __init__(self, trunk: nn.Module, pooling: str = "cls"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
        self.trunk = trunk
        self.pooling = pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.trunk.forward_features(x)
        if self.pooling == "timm":
            return self.trunk.forward_head(tokens)
        return pool_tokens(tokens, self.pooling, getattr(self.trunk, "num_prefix_tokens", 1))


def architecture(spec: EncoderSpec) -> nn.Module:
    """The encoder with random weights: what ``fusecpath models verify`` builds on the meta device."""
    return PooledViT(create_trunk(spec.arch), spec.pooling)


def clean_state_dict(
    state: Mapping[str, torch.Tensor], prefix: str | None = None, drop: tuple[str, ...] = ("head.",)
) -> dict[str, torch.Tensor]:
    """Keep the keys under ``prefix`` (stripped); strip common wrapper prefixes; drop classifier heads."""
    out = {}
    for key, value in state.items():
        if prefix is not None:
            if not key.startswith(prefix):
                continue
            key = key[len(prefix) :]
        for wrapper in _PREFIXES:
            key = key.removeprefix(wrapper)
        if not key.startswith(drop):
            out[key] = value
    return out


def load(
    spec: EncoderSpec,
    device: str = "cpu",
    weights: Path | None = None,
    *,
    convert: Callable[[State], State] | None = None,
) -> nn.Module:
    """The loader of timm patch encoders: ``architecture(spec)`` with the spec's checkpoint in its trunk.

    Wrapper prefixes and classifier heads are stripped (``clean_state_dict``); ``convert`` maps key names
    of a checkpoint that is not in timm's layout.
    """

    def to_trunk(state: State, _model: nn.Module) -> State:
        state = clean_state_dict(state)
        return {f"trunk.{k}": v for k, v in (convert(state) if convert else state).items()}

    return build_from_checkpoint(spec, weights, architecture, to_trunk)
