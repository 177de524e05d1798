"""GenBio AI's GenBio-PathFM: a DINOv3-style ViT-g/16 (RoPE, 4 storage tokens, SwiGLU, LayerScale) that
reads each RGB channel as its own grey image; the embedding is the three channels' CLS tokens side by side
(3 x 1536 = 4608). Weights ``model.pth`` (a plain state dict) in genbio-ai/genbio-pathfm. Torch-free module.
"""

import fusecpath

GENBIO_MEAN = (0.697, 0.575, 0.728)
GENBIO_STD = (0.188, 0.240, 0.187)


@fusecpath.hookimpl
def register_encoders(register):
    register(
        fusecpath.EncoderSpec(
            name="genbio-pathfm",
            level="patch",
            embed_dim=4608,
            loader="fusecpath_plugin_genbio.model:load",
            architecture="fusecpath_plugin_genbio.model:architecture",
            source="hf-hub:genbio-ai/genbio-pathfm",
            weights_file="model.pth",
            arch={
                "patch_size": 16,
                "embed_dim": 1536,
                "depth": 40,
                "num_heads": 24,
                "ffn_ratio": 4,
                "ffn_align": 64,
                "storage_tokens": 4,
                "qkv_bias": False,
                "layerscale": 1e-5,
                "rope_base": 100.0,
                "rope_dtype": "bf16",
                "norm_eps": 1e-6,
            },
            mpp=0.5,
            read_px=224,
            input_px=224,
            crop=True,
            interpolation="bilinear",
            mean=GENBIO_MEAN,
            std=GENBIO_STD,
            pooling="model",
            precision="bf16",
            license="GenBio AI Community License",
            gated=False,
            paper="Kapse et al. 2026, GenBio-PathFM (JEDI: JEPA + DINO), bioRxiv 10.1101/2026.03.17.712534",
            description="GenBio-PathFM: ViT-g/16 (1.1B) over single channels; the CLS tokens of the R, G "
            "and B images concatenated (4608-d). Resize 224 + centre crop, GenBio's mean/std.",
            aliases=("genbio",),
        )
    )
