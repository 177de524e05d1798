"""KEEP (Zhou et al., Cancer Cell 2026): a knowledge-enhanced pathology vision-language model; its image
encoder is a timm ViT-L/16 (LayerScale) followed by a projection head to 768. fusecpath builds the
vision tower from this record and loads its weights from the repo's model.safetensors; KEEP's remote code
(which replaces timm's LayerScale process-wide) is never run. Torch-free module.
"""

import fusecpath


@fusecpath.hookimpl
def register_encoders(register):
    register(
        fusecpath.EncoderSpec(
            name="keep",
            level="patch",
            embed_dim=768,
            loader="fusecpath_plugin_keep.model:load",
            architecture="fusecpath_plugin_keep.model:architecture",
            source="hf-hub:Astaxanthin/KEEP",
            weights_file="model.safetensors",
            arch={
                "model_name": "vit_large_patch16_224",
                "img_size": 224,
                "patch_size": 16,
                "init_values": 1e-5,
                "projection_dim": 768,
            },
            mpp=0.5,
            read_px=256,  # TRIDENT reads KEEP at 256 px at 20x (--patch_size 256 --mag 20)
            input_px=224,
            crop=True,
            interpolation="bicubic",
            pooling="model",
            precision="fp32",
            license="MIT",
            gated=False,
            paper="Zhou et al. 2026, Knowledge-enhanced pretraining for vision-language pathology foundation "
            "model on cancer diagnosis, Cancer Cell, doi 10.1016/j.ccell.2026.01.019",
            description="KEEP image encoder (encode_image): ViT-L/16 CLS token through the visual projection head, "
            "L2-normalised (768-d). Read 256 px at 20x (0.5 µm/px) as TRIDENT does, resized to 224 bicubic + "
            "centre crop 224, ImageNet norm.",
        )
    )
