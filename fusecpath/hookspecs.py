"""The hooks a fusecpath plugin may implement."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from fusecpath.zoo import EncoderSpec

hookspec = pluggy.HookspecMarker("fusecpath")
hookimpl = pluggy.HookimplMarker("fusecpath")


@hookspec
def register_encoders(register: Callable[[EncoderSpec], None]) -> None:
    """Call ``register(spec)`` once for every patch- or slide-level encoder the plugin provides.

    Each spec names its ``loader`` (``load(spec, device, weights=None)``) and, optionally, its
    ``architecture`` (``architecture(spec)``): the loader protocol of docs/plugins.md. ``mean-<name>``
    slide baselines of patch encoders are added by the registry.
    """
