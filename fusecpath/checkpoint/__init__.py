"""Fused checkpoints: the folder format, the model card, and push / pull / search on the Hugging Face Hub.

Importing this package imports neither torch nor huggingface_hub; the functions do, when called.
"""

from __future__ import annotations

from fusecpath.checkpoint.card import render_card
from fusecpath.checkpoint.folder import (
    CheckpointError,
    CheckpointMixin,
    read_checkpoint,
    verify_checkpoint,
    write_checkpoint,
)

__all__ = [
    "CheckpointError",
    "CheckpointMixin",
    "read_checkpoint",
    "render_card",
    "verify_checkpoint",
    "write_checkpoint",
]
