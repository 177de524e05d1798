"""CTransPath (Wang et al., MedIA 2022) as retrained for CHIEF, and the CHIEF slide encoder (Wang et al.,
Nature 2024). Torch-free module.

- ``ctranspath``: Swin-T/4 window 7 whose patch embedding is a convolutional stem; 768-d average-pooled
  final tokens. Weights ``CHIEF_CTransPath.pth`` from the MahmoodLab/hest-bench dataset repo (gated),
  as TRIDENT loads them.
- ``chief``: CHIEF's gated-attention aggregator over CTransPath features; the slide embedding
  ("WSI_feature") is the attention-weighted mean of the 768-d patch features. Its weights
  (``CHIEF_pretraining.pth``) are only in the authors' Google Drive folder: download them and set
  ``FUSECPATH_WEIGHTS_CHIEF``.
"""

import fusecpath

CHIEF_WEIGHTS_URL = "https://drive.google.com/drive/folders/1uRv9A1HuTW5m_pJoyMzdN31bE1i-tDaV"
CHIEF_PAPER = (
    "Wang et al. 2024, A pathology foundation model for cancer diagnosis and prognosis "
    "prediction, Nature 634, doi 10.1038/s41586-024-07894-z"
)


@fusecpath.hookimpl
def register_encoders(register):
    register(
        fusecpath.EncoderSpec(
            name="ctranspath",
            level="patch",
            embed_dim=768,
            loader="fusecpath_plugin_chief.ctranspath:load",
            architecture="fusecpath_plugin_chief.ctranspath:architecture",
            source="hf-dataset:MahmoodLab/hest-bench",
            weights_file="fm_v1/ctranspath/CHIEF_CTransPath.pth",
            arch={"model_name": "swin_tiny_patch4_window7_224", "stem": "conv"},
            mpp=1.0,
            read_px=256,
            input_px=224,
            interpolation="bilinear",
            pooling="mean",
            precision="fp32",
            license="GPL-3.0",
            gated=True,
            paper="Wang et al. 2022, Transformer-based unsupervised contrastive learning for "
            "histopathological image classification, Medical Image Analysis 81, 102559; " + CHIEF_PAPER,
            description="CTransPath: Swin-T with a convolutional stem, trained with semantically relevant "
            "contrastive learning; CHIEF's retrained weights. Read 256 px at 1 µm/px (10x), "
            "resize 224 bilinear, ImageNet norm; average of the final tokens.",
            aliases=("chief-ctranspath",),
        )
    )
    register(
        fusecpath.EncoderSpec(
            name="chief",
            level="slide",
            embed_dim=768,
            loader="fusecpath_plugin_chief.chief:load",
            architecture="fusecpath_plugin_chief.chief:architecture",
            source=f"url:{CHIEF_WEIGHTS_URL}",
            weights_file="CHIEF_pretraining.pth",
            arch={"size": [768, 512, 256], "n_classes": 2},
            pooling="attention",
            precision="fp32",
            requires="ctranspath",
            license="AGPL-3.0",
            gated=False,
            paper=CHIEF_PAPER,
            description="CHIEF slide encoder: gated attention over CTransPath features (768 -> 512 -> 256); "
            "the slide embedding is the attention-weighted mean of the patch features. Weights "
            f"only from the authors' folder ({CHIEF_WEIGHTS_URL}); set FUSECPATH_WEIGHTS_CHIEF.",
        )
    )
