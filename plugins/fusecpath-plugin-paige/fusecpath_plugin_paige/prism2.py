"""PRISM2: the repo's own perceiver + language model (trust_remote_code) over Virchow2 class tokens.

Virchow2 CLS embeddings (N, 1280) go through the repo's processor (``tile_embeddings=[...]``, which pads
and masks) and ``get_base_embedding`` gives the slide embedding (2560). This call sequence is taken from
third-party usage of the repo, not from its model card (unconfirmed).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fusecpath.encoders.remote import load_remote_model, repo_folder, require
from fusecpath.zoo import EncoderSpec


class Prism2Slide(nn.Module):
    """(N, 1280) Virchow2 class tokens (+ unused coords) -> (2560,) base slide embedding."""

    def __init__(self, model: nn.Module, processor):
        super().__init__()
        self.model = model
        self.processor = processor

    def forward(self, features: torch.Tensor, coords: torch.Tensor | None = None, patch_size_level0=None):
        device = next(self.model.parameters()).device
        batch = self.processor(tile_embeddings=[features.float().cpu()]).to(device)
        return self.model.get_base_embedding(**batch).reshape(-1)


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    transformers = require(spec, "transformers")
    folder = repo_folder(spec, weights)
    model = load_remote_model(spec, folder)
    processor = transformers.AutoProcessor.from_pretrained(
        str(folder), trust_remote_code=True, local_files_only=True
    )
    return Prism2Slide(model.eval(), processor)
