"""The runtime side of the zoo: the core's loaders and what plugins build theirs from.

Importing this package imports no torch. The loaders below are ready ``loader``/``architecture`` pairs
for a spec (``EncoderSpec(..., **TIMM_VIT)``); a plugin's own loader follows the same protocol
(docs/plugins.md): ``load(spec, device, weights=None)`` and, optionally, ``architecture(spec)``.
"""

from types import MappingProxyType

# timm ViTs built from ``spec.arch``, the checkpoint in timm's layout; tokens pooled by ``spec.pooling``.
TIMM_VIT = MappingProxyType(
    {"loader": "fusecpath.encoders.timm_vit:load", "architecture": "fusecpath.encoders.timm_vit:architecture"}
)
# The same, with a checkpoint in timm's or DINOv2's own layout.
TIMM_DINOV2 = MappingProxyType(
    {
        "loader": "fusecpath.encoders.timm_dinov2:load",
        "architecture": "fusecpath.encoders.timm_vit:architecture",
    }
)
# transformers vision models from the repo's own config.json and weights (AutoModel.from_pretrained).
HF_VIT = MappingProxyType(
    {"loader": "fusecpath.encoders.hf_vit:load", "architecture": "fusecpath.encoders.hf_vit:architecture"}
)
# transformers vision models built from ``spec.arch``, the repo's safetensors loaded into them.
HF_VIT_FROM_ARCH = MappingProxyType(
    {
        "loader": "fusecpath.encoders.hf_vit:load_from_arch",
        "architecture": "fusecpath.encoders.hf_vit:architecture",
    }
)

__all__ = ["HF_VIT", "HF_VIT_FROM_ARCH", "TIMM_DINOV2", "TIMM_VIT"]
