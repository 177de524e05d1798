"""Patch encoders that are Hugging Face ``transformers`` vision models (ViT, DINOv2, DINOv2 with registers).

``spec.arch`` is the model's transformers config as plain data: ``model_type`` plus the fields that fix
its shape (``add_pooling_layer`` goes to the model, not the config). ``spec.pooling`` says what becomes
the embedding: ``cls`` (class token of ``last_hidden_state``), ``pooler`` (``pooler_output``),
``cls+mean`` (class token with the mean of the patch tokens, register tokens excluded).

Two loaders, as the authors publish:

- ``load``: the hub repo's own ``config.json`` and weights through ``AutoModel.from_pretrained``
  (Phikon, Phikon-v2, Midnight); the loaded config must agree with ``spec.arch``;
- ``load_from_arch``: the architecture from ``spec.arch`` and the hub's safetensors loaded strictly into
  it, for repos whose ``trust_remote_code`` modules no longer run on current transformers (Hibou).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fusecpath.encoders.loading import check_complete
from fusecpath.encoders.timm_vit import pool_tokens
from fusecpath.encoders.weights import configured_path, hub_snapshot, load_state_dict, resolve_weights
from fusecpath.errors import WeightsError
from fusecpath.zoo import EncoderSpec

POOLINGS = ("cls", "pooler", "cls+mean")
_MODEL_KWARGS = ("add_pooling_layer",)
# Config fields whose disagreement means the checkpoint is not the model the spec describes.
_SHAPE_FIELDS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "patch_size",
    "num_register_tokens",
    "use_swiglu_ffn",
)


def split_arch(arch: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(model_type, config kwargs, model kwargs) from a spec's ``arch``."""
    config = dict(arch)
    try:
        model_type = config.pop("model_type")
    except KeyError:
        raise ValueError("arch needs 'model_type', a transformers model type such as 'vit'") from None
    model_kwargs = {k: config.pop(k) for k in _MODEL_KWARGS if k in config}
    return model_type, config, model_kwargs


def num_prefix_tokens(config: Any) -> int:
    """Class token plus register tokens, the tokens before the patches in ``last_hidden_state``."""
    return 1 + int(getattr(config, "num_register_tokens", 0) or 0)


class PooledHF(nn.Module):
    """A transformers vision model whose output is pooled into one embedding per image."""

    def __init__(self, model: nn.Module, pooling: str = "cls"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
        self.model = model
        self.pooling = pooling
        self.num_prefix_tokens = num_prefix_tokens(model.config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=x)
        if self.pooling == "pooler":
            return out.pooler_output
        return pool_tokens(out.last_hidden_state, self.pooling, self.num_prefix_tokens)


def config_from_arch(spec: EncoderSpec) -> Any:
    from transformers import AutoConfig

    model_type, config_kwargs, _ = split_arch(spec.arch)
    return AutoConfig.for_model(model_type, **config_kwargs)


def architecture(spec: EncoderSpec) -> nn.Module:
    """The encoder with random weights, from ``spec.arch`` alone (no download; fine on the meta device)."""
    from transformers import AutoModel

    _, _, model_kwargs = split_arch(spec.arch)
    return PooledHF(AutoModel.from_config(config_from_arch(spec), **model_kwargs), spec.pooling)


def load_from_arch(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    """Architecture from ``spec.arch``; the checkpoint (``spec.weights_file``) loaded into it.

    Loading goes through the model class's ``from_pretrained`` so that transformers renames the
    checkpoint's legacy key names (``attention.attention.query``, ``mlp.weights_in``) as it does for
    hub repos; every weight of the architecture must be in the checkpoint.
    """
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    path = resolve_weights(spec, explicit=weights)
    config = config_from_arch(spec)
    _, _, model_kwargs = split_arch(spec.arch)
    model_class = MODEL_MAPPING[type(config)]
    model, info = model_class.from_pretrained(
        None, config=config, state_dict=load_state_dict(path), output_loading_info=True, **model_kwargs
    )
    _check_complete(spec, info, path)
    return PooledHF(model.float(), spec.pooling)


def _check_complete(spec: EncoderSpec, info: Mapping[str, Any], where: Path) -> None:
    """transformers' loading info: every weight of the architecture present, none of the wrong shape."""
    mismatched = [m if isinstance(m, str) else str(m[0]) for m in info.get("mismatched_keys") or []]
    check_complete(None, [*(info.get("missing_keys") or []), *mismatched], spec, where)


def model_folder(spec: EncoderSpec, weights: Path | None = None) -> Path:
    """A local folder with the repo's ``config.json`` and weights: explicit, configured, or the hub's."""
    explicit = weights if weights is not None else configured_path(spec)
    if explicit is not None:
        path = Path(explicit).expanduser()
        folder = path if path.is_dir() else path.parent
        if not (folder / "config.json").is_file():
            raise WeightsError(
                f"{spec.name}: {folder} has no config.json; give the folder of a "
                f"download of {spec.hub_repo or 'the model'} (config.json and weights)"
            )
    else:
        folder = hub_snapshot(spec, ["config.json", "*.safetensors", "*.safetensors.index.json"])
        if not _has_weights(folder):
            folder = hub_snapshot(spec, ["config.json", "pytorch_model*.bin", "pytorch_model.bin.index.json"])
    if not _has_weights(folder):
        raise WeightsError(
            f"{spec.name}: no model.safetensors or pytorch_model.bin in {folder}; "
            f"download the repo (`{spec.origin.download_command()}`) or give its folder"
        )
    return folder


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    """``AutoModel.from_pretrained`` on the repo folder, every weight present, config as the spec says."""
    from transformers import AutoModel

    folder = model_folder(spec, weights)
    _, _, model_kwargs = split_arch(spec.arch)
    try:
        model, info = AutoModel.from_pretrained(str(folder), output_loading_info=True, **model_kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise WeightsError(
            f"{spec.name}: cannot load the transformers model in {folder} ({type(exc).__name__}: {first})"
        ) from None
    _check_complete(spec, info, folder)
    check_config(spec, model.config, folder)
    return PooledHF(model.float(), spec.pooling)


def check_config(spec: EncoderSpec, config: Any, folder: Path) -> None:
    """The loaded config must describe the architecture the spec records."""
    for key in _SHAPE_FIELDS:
        if key in spec.arch and getattr(config, key, None) != spec.arch[key]:
            raise WeightsError(
                f"{spec.name}: {folder}/config.json has {key}={getattr(config, key, None)!r}, "
                f"the model registered as {spec.name} has {spec.arch[key]!r}"
            )
