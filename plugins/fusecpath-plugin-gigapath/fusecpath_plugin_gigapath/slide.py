"""Prov-GigaPath's slide encoder: LongNet from the official gigapath package, weights slide_encoder.pth."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from fusecpath.encoders.remote import SlideEncoder, grid_step, remote_architecture, require
from fusecpath.encoders.weights import resolve_weights
from fusecpath.zoo import EncoderSpec

architecture = remote_architecture


def build(spec: EncoderSpec, weights: Path | None = None) -> nn.Module:
    slide_encoder = require(spec, "gigapath.slide_encoder")
    path = resolve_weights(spec, explicit=weights)
    model = slide_encoder.create_model(str(path), spec.arch["model_arch"], spec.arch["in_chans"],
                                       global_pool=True)
    layer = spec.arch["layer"]

    def call(model, features, coords, patch_size_level0):
        model.tile_size = patch_size_level0 or grid_step(coords[0])
        return model(features, coords.float(), all_layer_embed=True)[layer]

    return SlideEncoder(model, call)
