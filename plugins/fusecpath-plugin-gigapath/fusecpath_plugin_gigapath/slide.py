"""Prov-GigaPath's slide encoder: LongNet from the official gigapath package, weights slide_encoder.pth.

Importing ``gigapath.slide_encoder`` registers its architectures with timm; fusecpath builds the
architecture there and reads the checkpoint itself (``weights_only``) rather than through the
package's loader, which downloads on every call.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from fusecpath.encoders.remote import SlideEncoder, grid_step, remote_architecture, require
from fusecpath.encoders.weights import load_state_dict, resolve_weights
from fusecpath.errors import WeightsError
from fusecpath.zoo import EncoderSpec

architecture = remote_architecture


def build(spec: EncoderSpec, weights: Path | None = None) -> nn.Module:
    require(spec, "gigapath.slide_encoder")
    import timm

    model = timm.create_model(
        spec.arch["model_arch"], pretrained=False, in_chans=spec.arch["in_chans"], global_pool=True
    )
    path = resolve_weights(spec, explicit=weights)
    missing, _unexpected = model.load_state_dict(load_state_dict(path), strict=False)
    if missing:
        raise WeightsError(
            f"{spec.name}: {path} lacks {len(missing)} of the slide encoder's tensors "
            f"(e.g. {missing[0]}); is it prov-gigapath's slide_encoder.pth?"
        )
    layer = spec.arch["layer"]

    def call(model, features, coords, patch_size_level0):
        model.tile_size = patch_size_level0 or grid_step(coords[0])
        return model(features, coords.float(), all_layer_embed=True)[layer]

    return SlideEncoder(model, call)
