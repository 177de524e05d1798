"""Lunit's DINO ViT-S/8 and ViT-S/16 (Kang et al., CVPR 2023), as the timm models mirrored at
1aurent/vit_small_patch{8,16}_224.lunit_dino.

Normalised with Lunit's own training statistics (the Lunit benchmark repo; kaiko's eva agrees). The
Hub mirrors' timm configs carry timm's stock ImageNet statistics and crop_pct 0.9 (resize 248, crop 224),
which TRIDENT uses for ViT-S/8; Lunit publishes no crop, so the 224 px read goes in as it is. Torch-free module.
"""

import fusecpath
from fusecpath.encoders import TIMM_DINOV2

LUNIT_MEAN = (0.70322989, 0.53606487, 0.66096631)
LUNIT_STD = (0.21716536, 0.26081574, 0.20723464)
LUNIT_PAPER = (
    "Kang et al. 2023, Benchmarking self-supervised learning on diverse pathology datasets, "
    "CVPR, arXiv 2212.04690"
)


def _vits(name: str, patch: int, description: str, aliases: tuple[str, ...]) -> fusecpath.EncoderSpec:
    return fusecpath.EncoderSpec(
        name=name,
        level="patch",
        embed_dim=384,
        **TIMM_DINOV2,
        source=f"hf-hub:1aurent/vit_small_patch{patch}_224.lunit_dino",
        weights_file="model.safetensors",
        arch={"model_name": f"vit_small_patch{patch}_224"},
        mpp=0.5,
        read_px=224,
        input_px=224,
        interpolation="bicubic",
        mean=LUNIT_MEAN,
        std=LUNIT_STD,
        pooling="cls",
        precision="fp32",
        license="Lunit non-commercial",
        gated=False,
        paper=LUNIT_PAPER,
        description=description,
        aliases=aliases,
    )


@fusecpath.hookimpl
def register_encoders(register):
    register(
        _vits(
            "lunit-vits8",
            8,
            "Lunit DINO ViT-S/8 trained on 19M TCGA and in-house tiles; CLS token; Lunit's own "
            "mean/std (TRIDENT uses ImageNet's and resize 248 + crop 224 from the timm config).",
            ("lunit-dino-s8",),
        )
    )
    register(
        _vits(
            "lunit-vits16",
            16,
            "Lunit DINO ViT-S/16 (eva's pathology/lunit_vits16, which loads Lunit's release "
            "dino_vit_small_patch16_ep200.torch; fusecpath reads the same network from the timm mirror "
            "on the Hub, unconfirmed to be byte-identical); CLS token; Lunit's own mean/std. "
            "Read geometry 224 px at 0.5 µm/px as for ViT-S/8 (unconfirmed for S/16).",
            ("lunit-dino-s16",),
        )
    )
