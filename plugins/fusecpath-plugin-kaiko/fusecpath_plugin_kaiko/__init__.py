"""kaiko.ai's pathology foundation models.

- "Towards large-scale training of pathology FMs" (arXiv 2404.15217): timm ViTs, weights mirrored on the
  Hub as ``1aurent/<timm arch>.kaiko_ai_towards_large_pathology_fms``; CLS token; mean/std 0.5.
- Midnight (arXiv 2504.05186): DINOv2 ViT-g/14 published as a transformers model (kaiko-ai/midnight).
  Its model card embeds a tile as the CLS token concatenated with the mean patch token (3072-d);
  ``midnight-cls`` is the CLS token alone (1536-d), what TRIDENT v0.3.0 used (its current README lists
  Midnight-12k at 3072). Public under MIT, not gated.

Torch-free module.
"""

import fusecpath
from fusecpath.encoders import HF_VIT, TIMM_DINOV2

KAIKO_MEAN = (0.5, 0.5, 0.5)
KAIKO_STD = (0.5, 0.5, 0.5)
KAIKO_PAPER = (
    "kaiko.ai et al. 2024, Towards large-scale training of pathology foundation models, arXiv 2404.15217"
)
MIDNIGHT_PAPER = (
    "Karasikov et al. 2025, Training state-of-the-art pathology foundation models with orders "
    "of magnitude less data, arXiv 2504.05186"
)

# name -> (timm architecture, embed_dim, extra timm kwargs, size words)
VITS = {
    "kaiko-vits8": ("vit_small_patch8_224", 384, {}, "ViT-S/8"),
    "kaiko-vits16": ("vit_small_patch16_224", 384, {}, "ViT-S/16"),
    "kaiko-vitb8": ("vit_base_patch8_224", 768, {}, "ViT-B/8"),
    "kaiko-vitb16": ("vit_base_patch16_224", 768, {}, "ViT-B/16"),
    # DINOv2 with 4 registers; built at 518 px (its position grid), run at 224 with resampled positions.
    "kaiko-vitl14": ("vit_large_patch14_reg4_dinov2", 1024, {"img_size": 518}, "ViT-L/14 with 4 registers"),
}


def _vit(name: str) -> fusecpath.EncoderSpec:
    arch, dim, extra, words = VITS[name]
    return fusecpath.EncoderSpec(
        name=name,
        level="patch",
        embed_dim=dim,
        **TIMM_DINOV2,
        source=f"hf-hub:1aurent/{arch}.kaiko_ai_towards_large_pathology_fms",
        weights_file="model.safetensors",
        arch={"model_name": arch, "dynamic_img_size": True, **extra},
        mpp=0.5,
        read_px=256,
        input_px=224,
        crop=True,
        interpolation="bilinear",
        mean=KAIKO_MEAN,
        std=KAIKO_STD,
        pooling="cls",
        precision="fp32",
        license="Kaiko non-commercial",
        gated=False,
        paper=KAIKO_PAPER,
        description=f"kaiko.ai {words} trained with DINO/DINOv2 on TCGA; CLS token. Resize 224 + centre crop, "
        "mean/std 0.5.",
        aliases=(name.replace("kaiko-vit", "kaiko-vit-"),),
    )


def _midnight(name: str, pooling: str, dim: int, words: str) -> fusecpath.EncoderSpec:
    return fusecpath.EncoderSpec(
        name=name,
        level="patch",
        embed_dim=dim,
        **HF_VIT,
        source="hf-hub:kaiko-ai/midnight",
        arch={
            "model_type": "dinov2",
            "hidden_size": 1536,
            "num_hidden_layers": 40,
            "num_attention_heads": 24,
            "mlp_ratio": 4,
            "use_swiglu_ffn": True,
            "patch_size": 14,
            "image_size": 518,
            "layerscale_value": 1e-5,
        },
        mpp=0.5,
        read_px=224,
        input_px=224,
        crop=True,
        interpolation="bilinear",
        mean=KAIKO_MEAN,
        std=KAIKO_STD,
        pooling=pooling,
        precision="fp32",
        license="MIT",
        gated=False,  # public under MIT (TRIDENT's README lists Midnight-12k as not gated, MIT)
        paper=MIDNIGHT_PAPER,
        description=f"kaiko.ai Midnight-12k: DINOv2 ViT-g/14 trained on 12k slides; {words}. "
        "Resize 224 + centre crop, mean/std 0.5.",
        dependencies=("transformers>=4.40",),
    )


@fusecpath.hookimpl
def register_encoders(register):
    for name in VITS:
        register(_vit(name))
    register(
        _midnight(
            "midnight",
            "cls+mean",
            3072,
            "CLS token concatenated with the mean patch token (the model card's tile embedding)",
        )
    )
    register(_midnight("midnight-cls", "cls", 1536, "CLS token only"))
