"""Bioptimus' pathology foundation models: H-optimus-0, H-optimus-1, H0-mini.

All three are timm ViTs with 4 register tokens, read as 224 px at 0.5 µm/px and normalised with
Bioptimus' own mean and std. Torch-free: the models are built by fusecpath.encoders.timm_vit.
"""

import fusecpath
from fusecpath.encoders import TIMM_VIT

HO_MEAN = (0.707223, 0.578729, 0.703617)
HO_STD = (0.211883, 0.230117, 0.177517)
PAPER_H0 = "Saillard et al., H-optimus-0 (2024), https://github.com/bioptimus/releases"

# vit_giant_patch14_reg4_dinov2: embed 1536, depth 40, 24 heads, SwiGLU (fused), 4 registers, ~1.1B params.
H_OPTIMUS_ARCH = {
    "model_name": "vit_giant_patch14_reg4_dinov2",
    "img_size": 224,
    "init_values": 1e-5,
    "global_pool": "token",
    "dynamic_img_size": False,
}

SPECS = (
    fusecpath.EncoderSpec(
        name="h-optimus-0",
        aliases=("hoptimus0", "h-optimus0"),
        level="patch",
        embed_dim=1536,
        **TIMM_VIT,
        source="hf-hub:bioptimus/H-optimus-0",
        weights_file="pytorch_model.bin",
        arch=H_OPTIMUS_ARCH,
        mpp=0.5,
        read_px=224,
        input_px=224,
        mean=HO_MEAN,
        std=HO_STD,
        precision="fp16",
        pooling="cls",
        license="Apache-2.0",
        gated=False,
        paper=PAPER_H0,
        description="ViT-g/14 with 4 registers (1.1B), self-supervised (DINOv2) on >500k H&E slides; CLS token.",
    ),
    fusecpath.EncoderSpec(
        name="h-optimus-1",
        aliases=("hoptimus1", "h-optimus1"),
        level="patch",
        embed_dim=1536,
        **TIMM_VIT,
        source="hf-hub:bioptimus/H-optimus-1",
        weights_file="pytorch_model.bin",
        arch=H_OPTIMUS_ARCH,
        mpp=0.5,
        read_px=224,
        input_px=224,
        mean=HO_MEAN,
        std=HO_STD,
        precision="fp16",
        pooling="cls",
        license="CC-BY-NC-ND-4.0",
        gated=True,
        paper="Bioptimus, H-optimus-1 (2025), https://huggingface.co/bioptimus/H-optimus-1",
        description="H-optimus-0's architecture trained on over 1M slides of 800k+ patients; CLS token.",
    ),
    fusecpath.EncoderSpec(
        name="h0-mini",
        aliases=("h0mini",),
        level="patch",
        embed_dim=768,
        **TIMM_VIT,
        source="hf-hub:bioptimus/H0-mini",
        weights_file="pytorch_model.bin",
        arch={
            "model_name": "vit_base_patch14_reg4_dinov2",
            "img_size": 224,
            "mlp_layer": "swiglu_packed",
            "act_layer": "silu",
            "dynamic_img_size": False,
        },
        mpp=0.5,
        read_px=224,
        input_px=224,
        mean=HO_MEAN,
        std=HO_STD,
        precision="fp16",
        pooling="cls",
        license="CC-BY-NC-ND-4.0",
        gated=True,
        paper="Filiot et al., Distilling foundation models for robust and efficient models in digital "
        "pathology (MICCAI 2025), arXiv:2501.16239",
        description=(
            "ViT-B/14 with 4 registers distilled from H-optimus-0; CLS token (768), which its card recommends "
            "for linear probing. Its card also offers CLS + mean of patch tokens (1536), the default of "
            "Bioptimus' own SDK: sources disagree on the default."
        ),
    ),
)


@fusecpath.hookimpl
def register_encoders(register):
    for spec in SPECS:
        register(spec)
