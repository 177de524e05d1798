"""Owkin's Phikon (iBOT ViT-B/16) and Phikon-v2 (DINOv2 ViT-L/16), published as transformers models.

Torch-free: ``fusecpath models list`` imports this module. The models are built by
``fusecpath.encoders.hf_vit`` from the hub repo's own config.json and weights.
"""

import fusecpath
from fusecpath.encoders import HF_VIT

TRANSFORMERS = ("transformers>=4.40",)
LICENSE = "Owkin non-commercial"


@fusecpath.hookimpl
def register_encoders(register):
    register(
        fusecpath.EncoderSpec(
            name="phikon",
            level="patch",
            embed_dim=768,
            **HF_VIT,
            source="hf-hub:owkin/phikon",
            arch={
                "model_type": "vit",
                "hidden_size": 768,
                "num_hidden_layers": 12,
                "num_attention_heads": 12,
                "intermediate_size": 3072,
                "patch_size": 16,
                "image_size": 224,
                "qkv_bias": True,
                "add_pooling_layer": False,
            },
            mpp=0.5,
            read_px=224,
            input_px=224,
            interpolation="bilinear",
            pooling="cls",
            precision="fp32",
            license=LICENSE,
            gated=False,
            paper="Filiot et al. 2023, Scaling self-supervised learning for histopathology with masked "
            "image modeling, medRxiv 10.1101/2023.07.21.23292757",
            description="Owkin Phikon: ViT-B/16 trained with iBOT on 40M TCGA tiles; the CLS token of "
            "last_hidden_state (ViTModel without pooling layer).",
            dependencies=TRANSFORMERS,
        )
    )
    register(
        fusecpath.EncoderSpec(
            name="phikon-v2",
            level="patch",
            embed_dim=1024,
            **HF_VIT,
            source="hf-hub:owkin/phikon-v2",
            arch={
                "model_type": "dinov2",
                "hidden_size": 1024,
                "num_hidden_layers": 24,
                "num_attention_heads": 16,
                "mlp_ratio": 4,
                "patch_size": 16,
                "image_size": 224,
                "layerscale_value": 1e-5,
            },
            mpp=0.5,
            read_px=224,
            input_px=224,
            crop=True,
            interpolation="bilinear",
            pooling="cls",
            precision="fp32",
            license=LICENSE,
            gated=False,
            paper="Filiot et al. 2024, Phikon-v2, a large and public feature extractor for biomarker "
            "prediction, arXiv 2409.09173",
            description="Owkin Phikon-v2: DINOv2 ViT-L/16 trained on PANCAN-XL (456M tiles, 58k slides); "
            "the CLS token of last_hidden_state. Resize 224 + centre crop 224.",
            aliases=("phikonv2",),
            dependencies=TRANSFORMERS,
        )
    )
