"""CARE: a slide encoder over CONCH v1.5 patch features, run with its authors' code (trust_remote_code in
Zipper-1/CARE); patch coordinates are given on the patch grid (level-0 coords // patch size). Torch-free.
"""

import fusecpath


@fusecpath.hookimpl
def register_encoders(register):
    register(
        fusecpath.EncoderSpec(
            name="care",
            level="slide",
            embed_dim=512,
            loader="fusecpath_plugin_care.slide:load",
            source="hf-hub:Zipper-1/CARE",
            pooling="model",
            precision="fp32",
            requires="conch-v1.5",
            license="unknown",
            gated=True,
            paper="CARE slide foundation model, https://huggingface.co/Zipper-1/CARE",
            description="CARE slide encoder: AutoModel(trust_remote_code) called with (features, N, grid "
            "coords); its wsi_embedding (512-d). Needs CONCH v1.5 features (512 px at 0.5 µm/px).",
            dependencies=("transformers>=4.40",),
        )
    )
