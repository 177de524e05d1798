"""A minimal fusecpath plugin: copy this folder, rename, and register your own models.

Keep this module free of heavy imports (torch, timm, ...): ``fusecpath models list`` imports it.
The loader named in the spec is imported only when the model is built.
"""

import fusecpath


@fusecpath.hookimpl
def register_encoders(register):
    register(
        fusecpath.EncoderSpec(
            name="template-edge",
            level="patch",
            embed_dim=16,
            loader="fusecpath_plugin_template.model:load",
            architecture="fusecpath_plugin_template.model:architecture",
            mpp=0.5,
            read_px=256,
            input_px=224,
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
            pooling="mean",
            source="builtin",  # or "hf-hub:org/name" with weights_file=..., see docs/plugins.md
            license="Apache-2.0",
            description="Template: mean edge strength in 16 directions-by-scales. A demo, not an FM.",
        )
    )
