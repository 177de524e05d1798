"""fusecpath: a plugin-based zoo and fusion engine for pathology foundation models.

Importing this package does not import torch; ``load_encoder`` does, when it builds a model.
"""

from __future__ import annotations

from fusecpath.api import get_spec, list_encoders, load_encoder
from fusecpath.hookspecs import hookimpl
from fusecpath.zoo import EncoderSpec

__version__ = "0.1.0"

__all__ = ["EncoderSpec", "__version__", "get_spec", "hookimpl", "list_encoders", "load_encoder"]
