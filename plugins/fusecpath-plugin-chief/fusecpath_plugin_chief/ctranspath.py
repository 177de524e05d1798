"""CTransPath: timm's Swin-T with CTransPath's convolutional stem as the patch embedding.

The published checkpoint comes from timm 0.5 (downsampling at the end of a stage, persistent
attention-mask buffers); timm's own Swin checkpoint filter maps it to the current layout.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fusecpath.encoders.loading import build_from_checkpoint
from fusecpath.zoo import EncoderSpec


class ConvStem(nn.Module):
    """Two stride-2 3x3 conv-BN-ReLU layers (C/8, C/4 channels) and a 1x1 conv to C: a /4 patch embedding.

    Accepts timm's patch-embedding arguments and returns NHWC tokens, as timm's Swin expects.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 4,
        in_chans: int = 3,
        embed_dim: int = 96,
        norm_layer=None,
        output_fmt: str = "NHWC",
        **_: object,
    ):
        super().__init__()
        if patch_size != 4 or embed_dim % 8:
            raise ValueError("CTransPath's stem is a /4 embedding to a multiple of 8 channels")
        size = img_size if isinstance(img_size, int) else img_size[0]
        self.img_size = (size, size)
        self.patch_size = (4, 4)
        self.grid_size = (size // 4, size // 4)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        layers: list[nn.Module] = []
        width_in, width = in_chans, embed_dim // 8
        for _stage in range(2):
            layers += [
                nn.Conv2d(width_in, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            width_in, width = width, width * 2
        layers.append(nn.Conv2d(width_in, embed_dim, 1))
        self.proj = nn.Sequential(*layers)
        self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


def architecture(spec: EncoderSpec) -> nn.Module:
    import timm

    kwargs = {k: v for k, v in spec.arch.items() if k not in ("model_name", "stem")}
    return timm.create_model(
        spec.arch["model_name"], pretrained=False, num_classes=0, embed_layer=ConvStem, **kwargs
    )


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    from timm.models.swin_transformer import checkpoint_filter_fn

    return build_from_checkpoint(spec, weights, architecture, checkpoint_filter_fn)
