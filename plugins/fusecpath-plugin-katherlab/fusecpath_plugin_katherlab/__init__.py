"""KatherLab's COBRA (Lenz et al., CVPR 2025): a slide encoder over frozen tile embeddings of any of
CTransPath (768), UNI (1024), Virchow2's class token (1280) or H-optimus-0 (1536). A Mamba-2 encoder and
multi-head attention give one weight per tile; the slide embedding is the weighted sum of the input tile
embeddings, so it has the tile encoder's dimension. Registered on Virchow2's class token.

Built by ``fusecpath_plugin_katherlab.cobra`` with the authors' ``cobra`` package. Torch-free module.
"""

import fusecpath

COBRA_PACKAGE = "cobra @ git+https://github.com/KatherLab/COBRA"


@fusecpath.hookimpl
def register_encoders(register):
    register(
        fusecpath.EncoderSpec(
            name="cobra",
            level="slide",
            embed_dim=1280,
            loader="fusecpath_plugin_katherlab.cobra:load",
            architecture="fusecpath_plugin_katherlab.cobra:architecture",
            source="hf-hub:KatherLab/COBRA",
            weights_file="pytorch_model.bin",
            requires="virchow2-cls",
            arch={
                "embed_dim": 768,
                "input_dims": [768, 1024, 1280, 1536],
                "num_heads": 8,
                "layers": 2,
                "dropout": 0.25,
                "att_dim": 256,
                "d_state": 64,
            },
            precision="fp32",
            pooling="attention",
            license="GPL-3.0",
            gated=True,
            paper="Lenz et al. 2025, Unsupervised Foundation Model-Agnostic Slide-Level Representation "
            "Learning, CVPR, arXiv 2411.13623",
            description="COBRA I (pytorch_model.bin, TCGA LUAD/LUSC/STAD/CRC/BRCA): Mamba-2 encoder + 8 "
            "attention heads weight the Virchow2 class tokens; their weighted sum is the slide embedding "
            "(1280). Gated for non-commercial use (model card). Architecture kwargs are the Cobra class "
            "defaults with embed_dim 768 (unconfirmed for COBRA I; COBRA II, cobraII.pth.tar, is not "
            "registered). The cobra package pins torch 2.6 and needs mamba-ssm, which builds only with CUDA.",
            dependencies=(COBRA_PACKAGE, "mamba-ssm", "einops"),
        )
    )
