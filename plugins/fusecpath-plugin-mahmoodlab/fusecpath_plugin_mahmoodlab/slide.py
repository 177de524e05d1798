"""Mahmood Lab's slide encoders, each run with its authors' own code.

- TITAN: ``trust_remote_code`` from MahmoodLab/TITAN; ``encode_slide_from_patch_features`` over CONCH
  v1.5 features, coords and the level-0 patch size (inferred from the coords' grid when not given).
- FEATHER: pretrained ABMIL, ``trust_remote_code`` from MahmoodLab/abmil.base.*; ``forward_features``.
- MADELEINE: the madeleine package's architecture with the MahmoodLab/madeleine weights; ``encode_he``.
"""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

from torch import nn

from fusecpath.encoders.loading import load_into
from fusecpath.encoders.remote import SlideEncoder, grid_step, load_remote_model, repo_folder, require
from fusecpath.encoders.weights import load_state_dict
from fusecpath.zoo import EncoderSpec


def _titan(model, features, coords, patch_size_level0):
    return model.encode_slide_from_patch_features(features, coords, patch_size_level0 or grid_step(coords[0]))


def load_titan(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    return SlideEncoder(load_remote_model(spec, weights), _titan)


def _feather(model, features, coords, patch_size_level0):
    return model.forward_features(features)[0]


def load_feather(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    model = load_remote_model(spec, weights, allow_patterns=["*.py", "model.safetensors", "config.json"])
    return SlideEncoder(model, _feather)


def load_madeleine(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    """The package builds the architecture from the repo's model_config.json; fusecpath reads model.pt
    itself (weights_only) instead of the package's loader, which unpickles and always downloads."""
    package = require(spec, "madeleine.models.Model")
    folder = repo_folder(spec, weights, allow_patterns=["model_config.json", "model.pt"])
    config = Namespace(**json.loads((folder / "model_config.json").read_text()))
    model = package.create_model(config, device="cpu")
    path = folder / "model.pt"
    load_into(model, {k.removeprefix("module."): v for k, v in load_state_dict(path).items()}, spec, path)

    def call(model, features, coords, patch_size_level0):
        return model.encode_he(features, features.device)

    return SlideEncoder(model, call)
