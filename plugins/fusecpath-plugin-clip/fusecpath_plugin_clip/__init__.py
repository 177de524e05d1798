"""CLIP-style pathology vision-language models; fusecpath uses their image tower's projected embedding
(``encode_image`` without L2 normalisation). Torch-free module.

- PLIP (Huang et al., Nature Medicine 2023): OpenAI CLIP ViT-B/32 fine-tuned on OpenPath; a transformers
  ``CLIPModel`` at vinid/plip; built by ``fusecpath_plugin_clip.hf_clip``.
- QuiltNet (Ikezogwo et al., NeurIPS 2023): open_clip ViT-B/32 trained on Quilt-1M; wisdomik/QuiltNet-B-32.
- OmiCLIP (Chen et al., Nature Methods 2025, the Loki platform): open_clip CoCa ViT-L/14 trained on
  ST-bank image / gene-sentence pairs; WangGuangyuLab/Loki ``checkpoint.pt``.

QuiltNet and OmiCLIP are built by ``fusecpath_plugin_clip.openclip_tower`` with open_clip.
"""

import fusecpath

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# All three use the CLIP eval transform: resize the short side to 224 (bicubic), centre-crop 224.
COMMON = dict(
    level="patch",
    mpp=0.5,
    read_px=224,
    input_px=224,
    crop=True,
    interpolation="bicubic",
    mean=CLIP_MEAN,
    std=CLIP_STD,
    pooling="model",
    precision="fp32",
)

SPECS = (
    fusecpath.EncoderSpec(
        name="plip",
        embed_dim=512,
        loader="fusecpath_plugin_clip.hf_clip:load",
        architecture="fusecpath_plugin_clip.hf_clip:architecture",
        source="hf-hub:vinid/plip",
        weights_file="pytorch_model.bin",
        arch={
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "patch_size": 32,
            "image_size": 224,
            "projection_dim": 512,
            "hidden_act": "quick_gelu",
        },
        license="unknown",
        gated=False,
        paper="Huang et al. 2023, A visual-language foundation model for pathology image analysis using "
        "medical Twitter, Nature Medicine 29, doi 10.1038/s41591-023-02504-3",
        description="PLIP image tower: CLIP ViT-B/32 (OpenAI's, fine-tuned on 208k OpenPath pairs), "
        "get_image_features (512). CLIPProcessor's resize 224 bicubic + crop, CLIP mean/std. No licence is "
        "stated on the model card as far as checked (unconfirmed); OpenPath images have no fixed magnification, so the 224 px at 0.5 µm/px read is unconfirmed.",
        dependencies=("transformers>=4.40",),
        **COMMON,
    ),
    fusecpath.EncoderSpec(
        name="quiltnet-b32",
        aliases=("quiltnet",),
        embed_dim=512,
        loader="fusecpath_plugin_clip.openclip_tower:load",
        architecture="fusecpath_plugin_clip.openclip_tower:architecture",
        source="hf-hub:wisdomik/QuiltNet-B-32",
        weights_file="open_clip_pytorch_model.bin",
        arch={"model_name": "ViT-B-32"},
        license="MIT",
        gated=False,
        paper="Ikezogwo et al. 2023, Quilt-1M: One Million Image-Text Pairs for Histopathology, NeurIPS "
        "Datasets and Benchmarks, arXiv 2306.11207",
        description="QuiltNet-B-32 image tower: open_clip ViT-B/32 (GELU, as its open_clip_config.json), "
        "encode_image (512). open_clip's resize 224 bicubic + crop, CLIP mean/std. Quilt-1M frames have "
        "mixed magnifications, so the 224 px at 0.5 µm/px read is unconfirmed.",
        dependencies=("open_clip_torch>=2.24",),
        **COMMON,
    ),
    fusecpath.EncoderSpec(
        name="omiclip",
        aliases=("loki",),
        embed_dim=768,
        loader="fusecpath_plugin_clip.openclip_tower:load",
        architecture="fusecpath_plugin_clip.openclip_tower:architecture",
        source="hf-hub:WangGuangyuLab/Loki",
        weights_file="checkpoint.pt",
        arch={"model_name": "coca_ViT-L-14"},
        license="BSD-3-Clause",
        gated=True,
        paper="Chen et al. 2025, A visual-omics foundation model to bridge histopathology with spatial "
        "transcriptomics, Nature Methods 22, doi 10.1038/s41592-025-02707-1",
        description="OmiCLIP image tower: open_clip CoCa ViT-L/14, the first of its attentional pooler's "
        "256 query outputs through the projection (768), not L2-normalised (CoCa.encode_image normalises by default). "
        "open_clip's resize 224 bicubic + crop, CLIP mean/std. Licence (BSD-3-Clause, the Loki code's) and "
        "gating are from lazyslide's registry, unconfirmed on the model card; the read geometry is "
        "unconfirmed (Loki tiles Visium spots). lazyslide loads checkpoint.pt with weights_only=False; whether "
        "it holds objects that torch.load(weights_only=True) refuses is unchecked (if so fusecpath refuses it "
        "and asks for a safetensors conversion).",
        dependencies=("open_clip_torch>=2.24",),
        **COMMON,
    ),
)


@fusecpath.hookimpl
def register_encoders(register):
    for spec in SPECS:
        register(spec)
