"""Prov-GigaPath (Microsoft / Providence): the tile encoder and the LongNet slide encoder.

Torch-free: the tile encoder is built by fusecpath.encoders.timm_vit, the slide encoder by
fusecpath_plugin_gigapath.slide with the official gigapath package.
"""

import fusecpath
from fusecpath.encoders import TIMM_VIT

PAPER = "Xu et al., A whole-slide foundation model for digital pathology from real-world data, Nature 2024"
LICENSE = "Apache-2.0 with conditions"  # the repo's licence plus its terms of use (non-commercial research)

SPECS = (
    fusecpath.EncoderSpec(
        name="prov-gigapath",
        aliases=("gigapath", "prov-gigapath-tile", "gigapath-tile"),
        level="patch",
        embed_dim=1536,
        **TIMM_VIT,
        source="hf-hub:prov-gigapath/prov-gigapath",
        weights_file="pytorch_model.bin",
        # ViT-g with patch 16 on timm's dinov2 giant skeleton: embed 1536, depth 40, 24 heads (~1.13B).
        arch={
            "model_name": "vit_giant_patch14_dinov2",
            "img_size": 224,
            "patch_size": 16,
            "embed_dim": 1536,
            "depth": 40,
            "num_heads": 24,
            "init_values": 1e-5,
            "mlp_ratio": 5.33334,
            "dynamic_img_size": True,
        },
        mpp=0.5,
        read_px=256,
        resize_px=256,
        input_px=224,
        crop=True,
        interpolation="bicubic",
        precision="fp16",
        pooling="cls",
        license=LICENSE,
        gated=True,
        paper=PAPER,
        description="ViT-g/16 tile encoder (1.13B), DINOv2 on 1.3B tiles of 171k slides; 256 px resized "
        "(bicubic) to 256 then centre-cropped to 224; CLS token.",
    ),
    fusecpath.EncoderSpec(
        name="prov-gigapath-slide",
        aliases=("gigapath-slide",),
        level="slide",
        embed_dim=768,
        loader="fusecpath_plugin_gigapath.slide:load",
        source="hf-hub:prov-gigapath/prov-gigapath",
        weights_file="slide_encoder.pth",
        arch={"model_arch": "gigapath_slide_enc12l768d", "in_chans": 1536, "layer": 11},
        requires="prov-gigapath",
        precision="fp16",
        pooling="model",
        license=LICENSE,
        gated=True,
        paper=PAPER,
        description="LongNet (12 layers, 768) over the slide's tile embeddings and coordinates; the pooled "
        "output of layer 11 (all_layer_embed), as TRIDENT takes it. Needs the gigapath package.",
        dependencies=(
            "gigapath @ git+https://github.com/prov-gigapath/prov-gigapath.git",
            "fairscale",
            "flash-attn",
        ),
    ),
)


@fusecpath.hookimpl
def register_encoders(register):
    for spec in SPECS:
        register(spec)
