"""HistAI's Hibou-B and Hibou-L: DINOv2 ViT/14 with 4 register tokens, SwiGLU FFN and LayerScale.

The hub repos ship a ``trust_remote_code`` module written for transformers 4.x (it imports
``transformers.onnx``, gone in transformers 5). Its weights use the names of transformers' own
``Dinov2WithRegistersModel``, so fusecpath builds that class from the architecture recorded here and
loads ``model.safetensors`` into it strictly: no remote code runs. Torch-free module.
"""

import fusecpath
from fusecpath.encoders import HF_VIT_FROM_ARCH

HIBOU_MEAN = (0.7068, 0.5755, 0.722)
HIBOU_STD = (0.195, 0.2316, 0.1816)
PAPER = (
    "Nechaev et al. 2024, Hibou: a family of foundational vision transformers for pathology, arXiv 2406.05074"
)


def _hibou(name: str, repo: str, dim: int, depth: int, heads: int, size: str) -> fusecpath.EncoderSpec:
    return fusecpath.EncoderSpec(
        name=name,
        level="patch",
        embed_dim=dim,
        **HF_VIT_FROM_ARCH,
        source=f"hf-hub:{repo}",
        weights_file="model.safetensors",
        arch={
            "model_type": "dinov2_with_registers",
            "hidden_size": dim,
            "num_hidden_layers": depth,
            "num_attention_heads": heads,
            "mlp_ratio": 4,
            "patch_size": 14,
            "image_size": 224,
            "num_register_tokens": 4,
            "use_swiglu_ffn": True,
            "layerscale_value": 1e-5,
            "layer_norm_eps": 1e-6,
            "qkv_bias": True,
        },
        mpp=0.5,
        read_px=224,
        input_px=224,
        interpolation="bicubic",
        mean=HIBOU_MEAN,
        std=HIBOU_STD,
        pooling="pooler",
        precision="fp32",
        license="Apache-2.0",
        gated=True,
        paper=PAPER,
        description=f"HistAI Hibou-{size}: DINOv2 ViT-{size}/14 with 4 registers trained on 1.2B tiles; "
        "pooler_output (final-norm CLS token). Resize 224 bicubic, Hibou's own mean/std.",
        dependencies=("transformers>=4.48",),
    )


@fusecpath.hookimpl
def register_encoders(register):
    register(_hibou("hibou-b", "histai/hibou-b", 768, 12, 12, "B"))
    register(_hibou("hibou-l", "histai/hibou-L", 1024, 24, 16, "L"))
