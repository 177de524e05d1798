"""Prov-GigaPath's slide encoder: LongNet from the official gigapath package, weights slide_encoder.pth.

Importing ``gigapath.slide_encoder`` registers its architectures with timm; fusecpath builds the
architecture there and reads the checkpoint itself (``weights_only``) rather than through the
package's loader, which downloads on every call.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from fusecpath.encoders.loading import build_from_checkpoint
from fusecpath.encoders.remote import SlideEncoder, grid_step, require
from fusecpath.zoo import EncoderSpec


def _longnet(spec: EncoderSpec) -> nn.Module:
    import timm

    return timm.create_model(
        spec.arch["model_arch"], pretrained=False, in_chans=spec.arch["in_chans"], global_pool=True
    )


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    require(spec, "gigapath.slide_encoder")  # registers LongNet with timm
    model = build_from_checkpoint(spec, weights, _longnet, strict=False)
    layer = spec.arch["layer"]

    def call(model, features, coords, patch_size_level0):
        model.tile_size = patch_size_level0 or grid_step(coords[0])
        return model(features, coords.float(), all_layer_embed=True)[layer]

    return SlideEncoder(model, call)
