"""An open_clip model's image tower (``visual``), built by open_clip from ``spec.arch["model_name"]``.

The whole CLIP / CoCa model is created (on the meta device when called under it) and only ``visual``
is kept. Checkpoints are read by fusecpath (safetensors, or a pickle with ``weights_only=True``; a
training checkpoint's ``state_dict`` and DDP's ``module.`` prefix are unwrapped) and the tower's
tensors are loaded strictly.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fusecpath.encoders.loading import build_from_checkpoint
from fusecpath.encoders.remote import require
from fusecpath.zoo import EncoderSpec, to_jsonable


class OpenClipImageTower(nn.Module):
    """(B, 3, H, W) -> (B, embed_dim): ``encode_image(x, normalize=False)``."""

    def __init__(self, visual: nn.Module):
        super().__init__()
        self.visual = visual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.visual(x)
        return out[0] if isinstance(out, tuple) else out  # CoCa's tower also returns its tokens


def architecture(spec: EncoderSpec) -> OpenClipImageTower:
    open_clip = require(spec, "open_clip")
    kwargs = to_jsonable({k: v for k, v in spec.arch.items() if k != "model_name"})  # open_clip wants dicts
    model = open_clip.create_model(
        spec.arch["model_name"], pretrained=None, device=torch.get_default_device(), **kwargs
    )
    return OpenClipImageTower(model.visual)


def visual_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``visual.*`` tensors (DDP's ``module.`` prefix removed): the wrapper's own key names."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return {k: v for k, v in state.items() if k.startswith("visual.")}


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    require(spec, "open_clip")  # before the weights: the package is what a user most often lacks
    return build_from_checkpoint(spec, weights, architecture, lambda state, _: visual_state(state)).eval()
