"""Lunit's DINO ViT-S/8 (Kang et al., CVPR 2023), as the timm model mirrored at 1aurent/...lunit_dino.

Normalised with Lunit's own training statistics (the Lunit benchmark repo; kaiko's eva agrees). The
Hub mirror's timm config carries timm's stock ImageNet statistics and crop_pct 0.9 (resize 248, crop 224),
which TRIDENT uses; Lunit publishes no crop, so the 224 px read goes in as it is. Torch-free module.
"""

import fusecpath
from fusecpath.encoders import TIMM_DINOV2

LUNIT_MEAN = (0.70322989, 0.53606487, 0.66096631)
LUNIT_STD = (0.21716536, 0.26081574, 0.20723464)


@fusecpath.hookimpl
def register_encoders(register):
    register(
        fusecpath.EncoderSpec(
            name="lunit-vits8",
            level="patch",
            embed_dim=384,
            **TIMM_DINOV2,
            source="hf-hub:1aurent/vit_small_patch8_224.lunit_dino",
            weights_file="model.safetensors",
            arch={"model_name": "vit_small_patch8_224"},
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
            paper="Kang et al. 2023, Benchmarking self-supervised learning on diverse pathology datasets, "
            "CVPR, arXiv 2212.04690",
            description="Lunit DINO ViT-S/8 trained on 19M TCGA and in-house tiles; CLS token; Lunit's own "
            "mean/std (TRIDENT uses ImageNet's and resize 248 + crop 224 from the timm config).",
            aliases=("lunit-dino-s8",),
        )
    )
