"""Loading a checkpoint into an architecture: the one skeleton every loader shares.

``build_from_checkpoint`` resolves the spec's weights (an explicit path, FUSECPATH_WEIGHTS_<NAME>, the
config file, the Hugging Face cache, a download), builds the architecture, maps the checkpoint's key
names with ``convert`` and loads it; ``load_into`` is that last step alone, with the one check of what
does not fit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from fusecpath.encoders.weights import load_state_dict, resolve_weights
from fusecpath.errors import WeightsError
from fusecpath.zoo import EncoderSpec

State = dict[str, torch.Tensor]
Convert = Callable[[State, nn.Module], State]


def build_from_checkpoint(
    spec: EncoderSpec,
    weights: Path | None,
    architecture: Callable[[EncoderSpec], nn.Module],
    convert: Convert | None = None,
    *,
    strict: bool = True,
    filename: str | None = None,
) -> nn.Module:
    """``architecture(spec)`` with the spec's checkpoint (``filename``, default ``spec.weights_file``) loaded.

    ``convert(state, model)`` maps the checkpoint's tensors to the model's key names. ``strict``: every key
    must match; otherwise keys the model lacks are ignored but every parameter must be in the checkpoint.
    """
    path = resolve_weights(spec, filename, explicit=weights)
    model = architecture(spec)
    state = load_state_dict(path)
    if convert is not None:
        state = convert(state, model)
    load_into(model, state, spec, path, strict=strict)
    return model


def load_into(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    spec: EncoderSpec,
    where: Path,
    *,
    strict: bool = True,
) -> None:
    """``module.load_state_dict(state)`` with one line naming what does not fit."""
    if not strict:
        missing, _unexpected = module.load_state_dict(state, strict=False)
        check_complete(module, missing, spec, where)
        return
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = "; ".join(lines[1:4])[:400] or type(exc).__name__
        raise WeightsError(
            f"{spec.name}: {where} does not fit the architecture ({detail}); is it the right file for this model?"
        ) from None


def check_complete(module: nn.Module | None, missing: Iterable[str], spec: EncoderSpec, where: Path) -> None:
    """Raise one line when a checkpoint lacks parameters (of ``module``; any missing key when it is None)."""
    missing = sorted(missing)
    if module is not None:
        params = {name for name, _ in module.named_parameters()}
        missing = [key for key in missing if key in params]
    if missing:
        more = " ..." if len(missing) > 4 else ""
        raise WeightsError(
            f"{spec.name}: {where} lacks weights for {', '.join(missing[:4])}{more} ({len(missing)} tensors); "
            "is it the right checkpoint for this model?"
        )
