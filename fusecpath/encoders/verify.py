"""``fusecpath models verify``: build an encoder's architecture on the meta device, with no weights.

A loader module (the ``module`` of a spec's ``loader``) that can build its architecture without
weights exposes ``architecture(spec) -> nn.Module``. Built inside ``torch.device("meta")`` it takes
no memory; a forward pass on meta tensors gives the output shape. Models whose architecture exists
only as code shipped with their weights (``trust_remote_code`` repos) or in a package that is not
installed raise ``ArchitectureUnavailable`` with the reason, which is reported as it is.
"""

from __future__ import annotations

import importlib
from typing import Any

from fusecpath.errors import FusecpathError
from fusecpath.zoo import EncoderSpec

META_BATCH = 2  # images in the meta forward pass of a patch encoder
META_PATCHES = 16  # patches in the meta forward pass of a slide encoder


class ArchitectureUnavailable(FusecpathError):
    """The architecture cannot be built here without downloading code or installing a package."""


def _import_loader_module(spec: EncoderSpec):
    module_name = spec.loader.partition(":")[0]
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        missing = " ".join(f"'{d}'" for d in spec.dependencies)
        hint = f"; `pip install {missing}`" if missing else ""
        raise ArchitectureUnavailable(f"architecture needs {exc.name or module_name}{hint}") from None


def meta_forward(module: Any, spec: EncoderSpec, patch_dim: int | None = None) -> tuple[int, ...]:
    """The output shape of ``module`` for meta inputs of the spec's size."""
    import torch

    with torch.no_grad():
        if spec.level == "patch":
            x = torch.empty(META_BATCH, 3, spec.input_px, spec.input_px, device="meta")
            return tuple(module(x).shape)
        features = torch.empty(META_PATCHES, patch_dim or 1, device="meta")
        coords = torch.empty(META_PATCHES, 2, dtype=torch.int64, device="meta")
        return tuple(module(features, coords).shape)


def build_on_meta(spec: EncoderSpec):
    """The spec's architecture with meta tensors (no memory, no weights)."""
    import torch

    module = _import_loader_module(spec)
    architecture = getattr(module, "architecture", None)
    if architecture is None:
        raise ArchitectureUnavailable(
            f"{spec.loader.partition(':')[0]} defines no architecture(spec) to build without loading it"
        )
    with torch.device("meta"):
        return architecture(spec)


def verify_encoder(name: str | EncoderSpec) -> dict[str, Any]:
    """Parameter count and output dim of an encoder's architecture, built on meta. Downloads nothing.

    Returns ``{"name", "level", "embed_dim", "built", "parameters", "output_dim", "ok", "note"}``;
    ``ok`` is None when the architecture could not be built here (``note`` says why).
    """
    from fusecpath.api import get_spec

    spec = name if isinstance(name, EncoderSpec) else get_spec(name)
    report: dict[str, Any] = {
        "name": spec.name,
        "level": spec.level,
        "embed_dim": spec.embed_dim,
        "built": False,
        "parameters": None,
        "output_dim": None,
        "ok": None,
        "note": "",
    }
    try:
        model = build_on_meta(spec)
    except ArchitectureUnavailable as exc:
        report["note"] = str(exc)
        return report
    patch_dim = get_spec(spec.requires).embed_dim if spec.requires else None
    shape = meta_forward(model, spec, patch_dim)
    report.update(
        built=True,
        parameters=sum(p.numel() for p in model.parameters()),
        output_dim=shape[-1] if shape else 1,
        ok=bool(shape) and shape[-1] == spec.embed_dim,
    )
    if not report["ok"]:
        report["note"] = f"output shape {shape} does not end in the declared embed_dim {spec.embed_dim}"
    return report
