"""MUSK (Xiang et al., Nature 2025): a BEiT-3-style multimodal transformer; fusecpath uses its image
branch, the vision CLS token (1024-d, no projection head, no multiscale augmentation), as TRIDENT does.
Built by the authors' ``musk`` package (not on PyPI). Torch-free module.
"""

import fusecpath

MUSK_PACKAGE = "musk @ git+https://github.com/lilab-stanford/MUSK"


@fusecpath.hookimpl
def register_encoders(register):
    register(
        fusecpath.EncoderSpec(
            name="musk",
            level="patch",
            embed_dim=1024,
            loader="fusecpath_plugin_musk.model:load",
            architecture="fusecpath_plugin_musk.model:architecture",
            source="hf-hub:xiangjx/musk",
            weights_file="model.safetensors",
            arch={"model_name": "musk_large_patch16_384"},
            mpp=0.5,
            read_px=384,
            input_px=384,
            crop=True,
            interpolation="bicubic",
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            pooling="cls",
            precision="fp16",
            license="CC-BY-NC-ND-4.0",
            gated=True,
            paper="Xiang et al. 2025, A vision-language foundation model for precision oncology, Nature 638",
            description="MUSK image branch: vision CLS token at 384 px (with_head=False, ms_aug=False). "
            "Resize 384 bicubic + crop; Inception mean/std 0.5 as in the MUSK README and TRIDENT "
            "(lazyslide-models uses ImageNet's).",
            dependencies=(MUSK_PACKAGE, "fairscale"),
        )
    )
