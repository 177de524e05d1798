"""Paige's pathology foundation models: Virchow, Virchow2, Virchow2 CLS-only (patch); PRISM (slide, on
Virchow) and PRISM2 (slide, on Virchow2's class token).

Torch-free: the Virchows are built by fusecpath.encoders.timm_vit, PRISM and PRISM2 by
fusecpath_plugin_paige.prism / .prism2 from their repos' own code.
"""

import fusecpath
from fusecpath.encoders import TIMM_VIT

# vit_huge_patch14_224 with SwiGLU (packed) and SiLU: embed 1280, depth 32, 16 heads.
VIRCHOW_ARCH = {
    "model_name": "vit_huge_patch14_224",
    "img_size": 224,
    "init_values": 1e-5,
    "mlp_ratio": 5.3375,
    "global_pool": "",
    "dynamic_img_size": True,
    "mlp_layer": "swiglu_packed",
    "act_layer": "silu",
}
# Both are read at 224 px, 0.5 µm/px and resized (bicubic) without a crop, as their model cards do.
VIRCHOW_COMMON = dict(
    level="patch",
    embed_dim=2560,
    **TIMM_VIT,
    weights_file="pytorch_model.bin",
    mpp=0.5,
    read_px=224,
    input_px=224,
    interpolation="bicubic",
    precision="fp16",
    pooling="cls+mean",
    gated=True,
)

VIRCHOW2_PAPER = (
    "Zimmermann et al., Virchow2: Scaling Self-Supervised Mixed Magnification Models in Pathology, "
    "arXiv:2408.00738"
)

SPECS = (
    fusecpath.EncoderSpec(
        name="virchow",
        aliases=("virchow1", "virchow-v1"),
        source="hf-hub:paige-ai/Virchow",
        arch=VIRCHOW_ARCH,
        license="Apache-2.0",
        paper="Vorontsov et al., A foundation model for clinical-grade computational pathology and rare "
        "cancers detection, Nature Medicine 2024",
        description="ViT-H/14 (632M), DINOv2 on 1.5M slides; CLS token concatenated with the mean of the "
        "256 patch tokens (2560). eva uses the CLS token alone (1280).",
        **VIRCHOW_COMMON,
    ),
    fusecpath.EncoderSpec(
        name="virchow2",
        aliases=("virchow-v2",),
        source="hf-hub:paige-ai/Virchow2",
        arch={**VIRCHOW_ARCH, "reg_tokens": 4},
        license="CC-BY-NC-ND-4.0",
        paper=VIRCHOW2_PAPER,
        description="Virchow's ViT-H/14 with 4 register tokens (632M), 3.1M slides at mixed magnifications; "
        "CLS token concatenated with the mean of the patch tokens, registers excluded (2560).",
        **VIRCHOW_COMMON,
    ),
    fusecpath.EncoderSpec(
        name="virchow2-cls",
        source="hf-hub:paige-ai/Virchow2",
        arch={**VIRCHOW_ARCH, "reg_tokens": 4},
        license="CC-BY-NC-ND-4.0",
        paper=VIRCHOW2_PAPER,
        description="Virchow2's class token alone (1280), the embedding kaiko's eva leaderboard reports "
        "(ExtractCLSFeatures without the patch-token mean) and the tile input of PRISM2; same weights "
        "and preprocessing as virchow2.",
        **{**VIRCHOW_COMMON, "embed_dim": 1280, "pooling": "cls"},
    ),
    fusecpath.EncoderSpec(
        name="prism",
        level="slide",
        embed_dim=1280,
        loader="fusecpath_plugin_paige.prism:load",
        source="hf-hub:paige-ai/Prism",
        requires="virchow",
        precision="fp16",
        pooling="model",
        license="CC-BY-NC-ND-4.0",
        gated=True,
        paper="Shaikovski et al., PRISM: A Multi-Modal Generative Foundation Model for Slide-Level "
        "Histopathology, arXiv:2405.10254",
        description="Perceiver slide aggregator over Virchow tile embeddings (CLS + mean, 2560); "
        "slide_representations()['image_embedding'] (1280). Its remote code needs transformers 4.42.",
        dependencies=("transformers==4.42.4", "environs==11.0.0", "sacremoses==0.1.1"),
    ),
    fusecpath.EncoderSpec(
        name="prism2",
        level="slide",
        embed_dim=2560,
        loader="fusecpath_plugin_paige.prism2:load",
        source="hf-hub:paige-ai/Prism2",
        requires="virchow2-cls",
        precision="bf16",
        pooling="model",
        license="CC-BY-NC-ND-4.0",
        gated=True,
        paper="PRISM2: Unlocking Multi-Modal General Pathology AI with Clinical Dialogue, arXiv:2506.13063",
        description="Perceiver slide encoder with a Phi-3 language model (remote code) over Virchow2 class "
        "tokens (1280); get_base_embedding (2560; get_diagnostic_embedding gives 3072). The processor call, "
        "the dims and the bf16 default come from third-party usage, not the model card (unconfirmed); "
        "TRIDENT pairs it with virchow2-cls at 224 px, 20x, and its remote code needs FlashAttention on GPU; "
        "the exact pinned packages are unconfirmed.",
        dependencies=("transformers>=4.46",),
    ),
)


@fusecpath.hookimpl
def register_encoders(register):
    for spec in SPECS:
        register(spec)
