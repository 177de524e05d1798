"""PRISM: the repo's own perceiver (trust_remote_code), over Virchow tile embeddings (N, 2560) -> (1280,)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from fusecpath.encoders.remote import SlideEncoder, load_remote_model
from fusecpath.zoo import EncoderSpec


def _image_embedding(model, features, coords, patch_size_level0):
    return model.slide_representations(features)["image_embedding"]


def load(spec: EncoderSpec, device: str = "cpu", weights: Path | None = None) -> nn.Module:
    model = load_remote_model(spec, weights)
    model.text_decoder = None  # only the slide encoder is used; drops the BioGPT decoder's memory
    return SlideEncoder(model, _image_embedding)
