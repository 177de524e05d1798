"""Slide encoders whose architecture ships as code in their Hub repo (``trust_remote_code``) or in a package.

``load_remote_model`` resolves the repo like any weights (explicit folder, FUSECPATH_WEIGHTS_<NAME>,
the HF cache, a download) and builds it with transformers' ``AutoModel`` from that local folder, so
``HF_HUB_OFFLINE=1`` works once the repo is cached. ``SlideEncoder`` adapts the model's own call to
fusecpath's slide interface: (N, D) patch features and (N, 2) level-0 coords -> (embed_dim,).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fusecpath.encoders.weights import configured_path, hub_snapshot
from fusecpath.errors import FusecpathError, WeightsError
from fusecpath.zoo import EncoderSpec


def require(spec: EncoderSpec, module: str):
    """Import ``module`` or fail with one line naming the spec's pip requirements."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        deps = " ".join(f"'{d}'" for d in spec.dependencies) or module
        raise FusecpathError(f"{spec.name} needs {exc.name or module}: `pip install {deps}`") from None


def repo_folder(spec: EncoderSpec, weights: Path | None, allow_patterns: list[str] | None = None) -> Path:
    """The model's repo as a local folder: ``weights``, else the configured path, else the Hub cache."""
    if weights is not None:
        folder = Path(weights).expanduser()
    elif (configured := configured_path(spec)) is not None:
        folder = configured
    else:
        return hub_snapshot(spec, allow_patterns=allow_patterns)
    if not folder.is_dir():
        raise WeightsError(
            f"{spec.name}: {folder} is not a folder with the files of {spec.hub_repo or 'its repo'}"
        )
    return folder


def load_remote_model(
    spec: EncoderSpec, weights: Path | None = None, allow_patterns: list[str] | None = None
) -> nn.Module:
    """``AutoModel.from_pretrained(<local repo>, trust_remote_code=True)``: the authors' own code."""
    transformers = require(spec, "transformers")
    folder = repo_folder(spec, weights, allow_patterns)
    return transformers.AutoModel.from_pretrained(str(folder), trust_remote_code=True, local_files_only=True)


def grid_step(coords: torch.Tensor) -> int:
    """The level-0 patch size of a regular tiling: the smallest positive step between coordinates."""
    steps = []
    for axis in (0, 1):
        values = torch.unique(coords[:, axis].long())
        if values.numel() > 1:
            steps.append(int(values.diff().min()))
    if not steps:
        raise FusecpathError("cannot infer the level-0 patch size from one patch; pass patch_size_level0")
    return min(steps)


class SlideEncoder(nn.Module):
    """Wraps a model and a function ``call(model, features[1, N, D], coords[1, N, 2], patch_size) -> (1, E)``."""

    def __init__(self, model: nn.Module, call: Callable[..., Any]):
        super().__init__()
        self.model = model
        self._call = call

    def forward(
        self, features: torch.Tensor, coords: torch.Tensor | None = None, patch_size_level0: int | None = None
    ) -> torch.Tensor:
        out = self._call(
            self.model, features[None], None if coords is None else coords[None], patch_size_level0
        )
        return out.reshape(-1)
