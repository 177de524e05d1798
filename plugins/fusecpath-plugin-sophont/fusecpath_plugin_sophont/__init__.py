"""Sophont AI / MedARC's OpenMidnight: an open replication of kaiko's Midnight, a DINOv2 ViT-g/14 with 4
registers trained at 224 px. The checkpoint (teacher_checkpoint_load.pt) is in DINOv2's own layout and is
renamed to timm's by ``fusecpath.encoders.timm_dinov2``. Torch-free module.
"""

import fusecpath
from fusecpath.encoders import TIMM_DINOV2


@fusecpath.hookimpl
def register_encoders(register):
    register(
        fusecpath.EncoderSpec(
            name="openmidnight",
            level="patch",
            embed_dim=1536,
            **TIMM_DINOV2,
            source="hf-hub:SophontAI/OpenMidnight",
            weights_file="teacher_checkpoint_load.pt",
            arch={"model_name": "vit_giant_patch14_reg4_dinov2", "img_size": 224},
            mpp=0.5,
            read_px=224,
            input_px=224,
            crop=True,
            interpolation="bilinear",
            pooling="cls",
            precision="fp32",
            license="Apache-2.0",
            gated=True,
            paper="Kaplan et al. 2025, OpenMidnight, https://github.com/MedARC-AI/OpenMidnight",
            description="OpenMidnight: DINOv2 ViT-g/14 with 4 registers (dinov2_vitg14_reg) trained on 12k "
            "TCGA slides at 224 px; final-norm CLS token. Resize 224 + centre crop, ImageNet norm.",
            aliases=("open-midnight",),
        )
    )
