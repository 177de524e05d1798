"""The Python API that mirrors ``fusecpath models``."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import TYPE_CHECKING

from fusecpath.errors import FusecpathError
from fusecpath.plugins import get_registry
from fusecpath.zoo import EncoderSpec, Level

if TYPE_CHECKING:
    import torch


def list_encoders(level: Level | None = None, pattern: str | None = None) -> list[EncoderSpec]:
    """Every registered encoder, sorted by name; filter by level and a pattern like ``"uni*"``."""
    return get_registry().list(level=level, pattern=pattern)


def get_spec(name: str) -> EncoderSpec:
    """The spec of a registered encoder, by name or alias."""
    return get_registry().get(name)


def resolve_loader(spec: EncoderSpec):
    """Import the ``module:callable`` a spec names."""
    module_name, _, attr = spec.loader.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = " ".join(f"'{d}'" for d in spec.dependencies)
        hint = f"; `pip install {missing}` adds what it needs" if missing else ""
        raise FusecpathError(f"{spec.name}: cannot import {module_name} ({exc}){hint}") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise FusecpathError(f"{spec.name}: {module_name} has no {attr!r} (loader {spec.loader})") from exc


def load_encoder(
    name: str | EncoderSpec, device: str = "cpu", weights: str | Path | None = None
) -> torch.nn.Module:
    """Build an encoder in eval mode on ``device``; ``weights`` overrides where its weights come from."""
    spec = name if isinstance(name, EncoderSpec) else get_spec(name)
    build = resolve_loader(spec)
    if weights is None:
        module = build(spec)
    elif "weights" in inspect.signature(build).parameters:
        module = build(spec, weights=Path(weights))
    else:
        raise FusecpathError(
            f"{spec.name}: its loader {spec.loader} takes no explicit weights path; "
            f"set FUSECPATH_WEIGHTS_{env_key(spec.name)} instead"
        )
    return module.eval().to(device)


def env_key(name: str) -> str:
    """``conch-v1.5`` -> ``CONCH_V1_5`` (for FUSECPATH_WEIGHTS_<NAME>)."""
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def missing_dependencies(spec: EncoderSpec) -> list[str]:
    """The spec's pip requirements that are not installed (or installed at a wrong version)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    missing = []
    for requirement in spec.dependencies:
        req = Requirement(requirement)
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(requirement)
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            missing.append(requirement)
    return missing


def weights_origin(spec: EncoderSpec) -> str:
    file = f", file {spec.weights_file}" if spec.weights_file else ""
    if spec.source == "builtin":
        return "built in: no downloaded weights"
    if spec.hub_repo is None:  # e.g. "url:...": weights the user downloads by hand
        return f"{spec.source}{file}; give its path with FUSECPATH_WEIGHTS_{env_key(spec.name)}=PATH"
    return (
        f"Hugging Face Hub {spec.hub_repo}{file}; override with FUSECPATH_WEIGHTS_{env_key(spec.name)}=PATH "
        "or the [weights] table of the fusecpath config file"
    )


def describe_encoder(name: str) -> dict:
    """``fusecpath models info NAME --json``: the spec plus where it comes from and what it needs."""
    registry = get_registry()
    spec = registry.get(name)
    missing = missing_dependencies(spec)
    info = spec.to_dict()
    info.update(
        plugin=registry.plugin_of(spec.name),
        fingerprint=spec.fingerprint(),
        weights=weights_origin(spec),
        missing_dependencies=missing,
        install_missing=("pip install " + " ".join(f"'{m}'" for m in missing)) if missing else None,
    )
    if spec.gated and spec.hub_repo:
        info["access"] = (
            f"gated: accept the terms at https://huggingface.co/{spec.hub_repo}, then `hf auth login`"
        )
    return info


def describe_encoders(level: Level | None = None, include_catalogue: bool = False) -> list[dict]:
    """``fusecpath models list --json``: one row per model, sorted by name."""
    registry = get_registry()
    rows = [
        {
            "name": e.spec.name,
            "level": e.spec.level,
            "embed_dim": e.spec.embed_dim,
            "license": e.spec.license,
            "gated": e.spec.gated,
            "source": e.spec.source,
            "requires": e.spec.requires,
            "aliases": list(e.spec.aliases),
            "plugin": e.plugin,
            "installed": True,
            "install": None,
        }
        for e in registry.entries()
        if level is None or e.spec.level == level
    ]
    if include_catalogue:
        from fusecpath.catalogue import load_catalogue

        for model in load_catalogue():
            if model.name in registry or (level and model.level != level):
                continue
            rows.append(
                {
                    "name": model.name,
                    "level": model.level,
                    "embed_dim": model.embed_dim,
                    "license": model.license,
                    "gated": model.gated,
                    "source": model.source,
                    "requires": model.requires,
                    "aliases": [],
                    "plugin": model.distribution,
                    "installed": False,
                    "install": model.install,
                }
            )
    return sorted(rows, key=lambda r: r["name"])


def describe_plugins() -> list[dict]:
    """``fusecpath plugins --json``: one row per loaded plugin."""
    from fusecpath.plugins import get_plugins

    return [
        {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "hooks": p.hooks,
            "models": p.models,
        }
        for p in get_plugins()
    ]
