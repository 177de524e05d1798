"""``fusecpath models verify``: build an encoder's architecture on the meta device, with no weights.

A spec whose architecture can be built without weights declares it: ``architecture="module:callable"``,
a function ``architecture(spec) -> nn.Module``. Built inside ``torch.device("meta")`` it takes no memory;
a forward pass on meta tensors gives the output shape. Models whose architecture exists only as code
shipped with their weights (``trust_remote_code`` repos) declare none; one whose builder needs a package
that is not installed raises ``ArchitectureUnavailable``: both are reported with the reason.
"""

from __future__ import annotations

from typing import Any

from fusecpath.errors import FusecpathError
from fusecpath.zoo import EncoderSpec

META_BATCH = 2  # images in the meta forward pass of a patch encoder
META_PATCHES = 16  # patches in the meta forward pass of a slide encoder


class ArchitectureUnavailable(FusecpathError):
    """The architecture cannot be built here without downloading code or installing a package."""


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

    from fusecpath.api import import_target

    if spec.architecture is None:
        how = f", from its weights ({spec.origin.page or spec.source})" if spec.origin.has_weights else ""
        raise ArchitectureUnavailable(
            f"{spec.name} declares no architecture(spec): it is built only by its loader{how}"
        )
    try:
        architecture = import_target(spec, spec.architecture)
    except FusecpathError as exc:
        raise ArchitectureUnavailable(f"architecture: {exc}") from None
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
