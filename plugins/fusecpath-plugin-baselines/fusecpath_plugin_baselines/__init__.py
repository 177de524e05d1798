"""Baselines that are not pathology FMs. Torch-free module.

``resnet50-trunc``: torchvision's ImageNet ResNet-50 (timm ``resnet50.tv_in1k``) cut after stage 3
(``layer3``, 1024 channels) and average-pooled: the patch encoder of CLAM (Lu et al. 2021) and TRIDENT.
"""

import fusecpath


@fusecpath.hookimpl
def register_encoders(register):
    register(
        fusecpath.EncoderSpec(
            name="resnet50-trunc",
            level="patch",
            embed_dim=1024,
            loader="fusecpath_plugin_baselines.resnet:load",
            architecture="fusecpath_plugin_baselines.resnet:architecture",
            source="hf-hub:timm/resnet50.tv_in1k",
            weights_file="model.safetensors",
            arch={"model_name": "resnet50", "out_index": 3},
            mpp=0.5,
            read_px=256,
            input_px=224,
            crop=True,
            interpolation="bilinear",
            pooling="mean",
            precision="fp32",
            license="BSD-3-Clause",
            gated=False,
            paper="He et al. 2016, Deep residual learning for image recognition; truncation as in Lu et al. "
            "2021, Data-efficient and weakly supervised computational pathology on whole-slide images",
            description="ImageNet ResNet-50 (torchvision weights) up to layer3, global average pool: the "
            "classic CLAM baseline. Resize 224 + centre crop, ImageNet norm.",
            aliases=("resnet50",),
        )
    )
