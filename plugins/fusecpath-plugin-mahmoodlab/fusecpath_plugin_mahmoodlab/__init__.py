"""Mahmood Lab's pathology foundation models.

Patch: UNI, UNI2-h (timm, built by fusecpath.encoders.timm_vit), CONCH and CONCH v1.5 (CoCa image
towers, fusecpath_plugin_mahmoodlab.conch). Slide: TITAN, FEATHER (their repos' own code) and
MADELEINE (its package), in fusecpath_plugin_mahmoodlab.slide. Torch-free.
"""

import fusecpath
from fusecpath.encoders import TIMM_VIT

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
LICENSE = "CC-BY-NC-ND-4.0"
SLIDE = "fusecpath_plugin_mahmoodlab.slide"
CONCH = dict(
    loader="fusecpath_plugin_mahmoodlab.conch:load",
    architecture="fusecpath_plugin_mahmoodlab.conch:architecture",
)
CONCH_PAPER = (
    "Lu et al., A visual-language foundation model for computational pathology, Nature Medicine 2024"
)
TITAN_PAPER = "Ding et al., Multimodal Whole Slide Foundation Model for Pathology (TITAN), arXiv:2411.19666"
FEATHER_PAPER = "Shao et al., Do Multiple Instance Learning Models Transfer?, ICML 2025"

# UNI and UNI2-h read 256 px at 0.5 µm/px, resize to 224 and centre-crop 224 (their model cards).
UNI_GEOMETRY = dict(mpp=0.5, read_px=256, resize_px=224, input_px=224, crop=True, interpolation="bilinear")
# CONCH and CONCH v1.5 read 512 px at 0.5 µm/px and take 448 px.
CONCH_GEOMETRY = dict(mpp=0.5, read_px=512, resize_px=448, input_px=448, crop=True)

PATCH = (
    fusecpath.EncoderSpec(
        name="uni",
        aliases=("uni-v1", "uni1"),
        level="patch",
        embed_dim=1024,
        **TIMM_VIT,
        source="hf-hub:MahmoodLab/UNI",
        weights_file="pytorch_model.bin",
        arch={
            "model_name": "vit_large_patch16_224",
            "img_size": 224,
            "patch_size": 16,
            "init_values": 1e-5,
            "dynamic_img_size": True,
        },
        **UNI_GEOMETRY,
        precision="fp16",
        pooling="cls",
        license=LICENSE,
        gated=True,
        paper="Chen et al., Towards a general-purpose foundation model for computational pathology, "
        "Nature Medicine 2024",
        description="ViT-L/16 (303M), DINOv2 on 100M tiles of 100k slides (Mass-100K); CLS token.",
    ),
    fusecpath.EncoderSpec(
        name="uni2-h",
        aliases=("uni2", "uni-v2", "uni2h"),
        level="patch",
        embed_dim=1536,
        **TIMM_VIT,
        source="hf-hub:MahmoodLab/UNI2-h",
        weights_file="pytorch_model.bin",
        arch={
            "model_name": "vit_giant_patch14_224",
            "img_size": 224,
            "patch_size": 14,
            "depth": 24,
            "num_heads": 24,
            "embed_dim": 1536,
            "init_values": 1e-5,
            "mlp_ratio": 2.66667 * 2,
            "no_embed_class": True,
            "mlp_layer": "swiglu_packed",
            "act_layer": "silu",
            "reg_tokens": 8,
            "dynamic_img_size": True,
        },
        **UNI_GEOMETRY,
        precision="bf16",
        pooling="cls",
        license=LICENSE,
        gated=True,
        paper="Chen et al., UNI2-h (2025), https://huggingface.co/MahmoodLab/UNI2-h",
        description="ViT-H/14 with 8 register tokens and SwiGLU (681M), DINOv2 on 200M+ tiles of 350k+ "
        "H&E and IHC slides; CLS token.",
    ),
    fusecpath.EncoderSpec(
        name="conch",
        aliases=("conch-v1", "conch1", "conch_v1"),
        level="patch",
        embed_dim=512,
        **CONCH,
        source="hf-hub:MahmoodLab/conch",
        weights_file="pytorch_model.bin",
        arch={
            "trunk": {"model_name": "vit_base_patch16_224", "img_size": 448, "dynamic_img_size": True},
            "pooler": "mha",
            "heads": 8,
            "prefix": "visual.",
        },
        **CONCH_GEOMETRY,
        interpolation="bicubic",
        mean=CLIP_MEAN,
        std=CLIP_STD,
        precision="fp32",
        pooling="attention",
        license=LICENSE,
        gated=True,
        paper=CONCH_PAPER,
        description="CoCa image tower: ViT-B/16 at 448 px, one-query attentional pooler and LayerNorm "
        "(encode_image without projection or normalisation, 512); 1.17M image-caption pairs.",
    ),
    fusecpath.EncoderSpec(
        name="conch-v1.5",
        aliases=("conchv1.5", "conch_v1_5", "conchv1_5", "conch-v15"),
        level="patch",
        embed_dim=768,
        **CONCH,
        source="hf-hub:MahmoodLab/conchv1_5",
        weights_file="pytorch_model_vision.bin",
        arch={
            "trunk": {"model_name": "vit_large_patch16_224", "img_size": 448, "init_values": 1.0},
            "pooler": "linear",
            "heads": 8,
            "prefix": "",
        },
        **CONCH_GEOMETRY,
        interpolation="bilinear",
        precision="fp16",
        pooling="attention",
        license=LICENSE,
        gated=True,
        paper=TITAN_PAPER,
        description="CONCH v1.5 image tower: ViT-L/16 with layer scale at 448 px, one-query "
        "attentional pooler and LayerNorm (768); TITAN's patch encoder.",
    ),
)

SLIDES = (
    fusecpath.EncoderSpec(
        name="titan",
        level="slide",
        embed_dim=768,
        loader=f"{SLIDE}:load_titan",
        source="hf-hub:MahmoodLab/TITAN",
        requires="conch-v1.5",
        precision="fp16",
        pooling="model",
        license=LICENSE,
        gated=True,
        paper=TITAN_PAPER,
        description="ViT slide encoder over a 2-D grid of CONCH v1.5 features (512 px at 20x) with ALiBi; "
        "encode_slide_from_patch_features (768). Runs the repo's own code.",
        dependencies=("transformers>=4.46", "einops", "einops-exts"),
    ),
    fusecpath.EncoderSpec(
        name="madeleine",
        level="slide",
        embed_dim=512,
        loader=f"{SLIDE}:load_madeleine",
        source="hf-hub:MahmoodLab/madeleine",
        requires="conch",
        precision="fp32",
        pooling="attention",
        license=LICENSE,
        gated=True,
        paper="Jaume et al., Multistain Pretraining for Slide Representation Learning in Pathology "
        "(MADELEINE), ECCV 2024",
        description="Multistain-pretrained attention MIL over CONCH features; encode_he (512). Trained on "
        "256 px patches at 10x (1.0 µm/px), the field of view of CONCH's 512 px at 20x.",
        dependencies=("madeleine @ git+https://github.com/mahmoodlab/MADELEINE.git",),
    ),
    fusecpath.EncoderSpec(
        name="feather-conch-v1.5",
        aliases=("feather", "feather-conch"),
        level="slide",
        embed_dim=512,
        loader=f"{SLIDE}:load_feather",
        source="hf-hub:MahmoodLab/abmil.base.conch_v15.pc108-24k",
        requires="conch-v1.5",
        precision="fp32",
        pooling="attention",
        license=LICENSE,
        gated=True,
        paper=FEATHER_PAPER,
        description="FEATHER: an ABMIL pretrained on the PC-108 task (24k slides) over CONCH v1.5 "
        "features; forward_features (512). Runs the repo's own code.",
        dependencies=("transformers>=4.46",),
    ),
    fusecpath.EncoderSpec(
        name="feather-uni2-h",
        aliases=("feather-uni2", "feather-uni-v2"),
        level="slide",
        embed_dim=512,
        loader=f"{SLIDE}:load_feather",
        source="hf-hub:MahmoodLab/abmil.base.uni_v2.pc108-24k",
        requires="uni2-h",
        precision="fp32",
        pooling="attention",
        license=LICENSE,
        gated=True,
        paper=FEATHER_PAPER,
        description="FEATHER: an ABMIL pretrained on the PC-108 task (24k slides) over UNI2-h features; "
        "forward_features (512). Runs the repo's own code.",
        dependencies=("transformers>=4.46",),
    ),
)


@fusecpath.hookimpl
def register_encoders(register):
    for spec in (*PATCH, *SLIDES):
        register(spec)
