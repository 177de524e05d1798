"""GPFM (Ma et al., Nature Biomedical Engineering 2025): a DINOv2 ViT-L/14 distilled from several pathology
FMs, weights GPFM.pth in majiabo/GPFM (a plain state dict, read with weights_only=True). Torch-free module.
"""

import fusecpath
from fusecpath.encoders import TIMM_DINOV2


@fusecpath.hookimpl
def register_encoders(register):
    register(
        fusecpath.EncoderSpec(
            name="gpfm",
            level="patch",
            embed_dim=1024,
            **TIMM_DINOV2,
            source="hf-hub:majiabo/GPFM",
            weights_file="GPFM.pth",
            arch={"model_name": "vit_large_patch14_dinov2", "img_size": 224, "init_values": 1e-5},
            mpp=0.5,
            read_px=224,
            input_px=224,
            interpolation="bicubic",
            pooling="cls",
            precision="fp32",
            license="CC-BY-NC-ND-4.0",
            gated=False,
            paper="Ma et al. 2025, A generalizable pathology foundation model using a unified knowledge "
            "distillation pretraining framework, Nat. Biomed. Eng., doi 10.1038/s41551-025-01488-4",
            description="GPFM: DINOv2 ViT-L/14 at 224 px, expert knowledge distillation from UNI, CONCH, "
            "Phikon and others plus self-distillation; CLS token. Resize 224 bicubic, ImageNet norm.",
        )
    )
