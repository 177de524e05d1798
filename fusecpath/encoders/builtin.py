"""The built-in encoders, registered like any plugin. They need no downloaded weights.

They are honest stand-ins so that the whole product runs on a laptop and in CI: hand-made
colour and texture statistics and a randomly initialised CNN. None is a pathology foundation model.
Their ``mean-<name>`` slide baselines are added by the registry, as for every patch encoder.
"""

from __future__ import annotations

from fusecpath.hookspecs import hookimpl
from fusecpath.zoo import EncoderSpec

PATCH_ENCODERS = (
    EncoderSpec(
        name="hed-stain",
        level="patch",
        embed_dim=32,
        loader="fusecpath.encoders.stain:load",
        input_px=128,  # colour statistics need no detail; 4x fewer pixels than 224
        aliases=("hed",),
        license="Apache-2.0",
        pooling="model",
        description=(
            "Colour only: Ruifrok-Johnston colour deconvolution into hematoxylin, eosin and DAB, "
            "then per-stain mean, spread, quantiles and histograms. Blind to texture."
        ),
    ),
    EncoderSpec(
        name="gabor-texture",
        level="patch",
        embed_dim=32,
        loader="fusecpath.encoders.texture:load",
        input_px=128,
        aliases=("gabor",),
        license="Apache-2.0",
        pooling="model",
        description=(
            "Texture only: a fixed Gabor filter bank (4 orientations x 3 wavelengths) and a "
            "gradient-orientation histogram on per-patch standardised grey levels. Blind to colour."
        ),
    ),
    EncoderSpec(
        name="random-cnn",
        level="patch",
        embed_dim=512,
        loader="fusecpath.encoders.random_cnn:load",
        input_px=112,
        arch={"model_name": "resnet18", "seed": 0},
        aliases=("rcnn",),
        license="Apache-2.0",
        pooling="mean",
        description=(
            "A timm ResNet-18 with seeded random weights (no training): random projections of "
            "colour and texture together, the classic untrained-CNN baseline."
        ),
    ),
)


@hookimpl
def register_encoders(register):
    for spec in PATCH_ENCODERS:
        register(spec)
