"""The Python API that mirrors ``fusecpath models``."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusecpath.errors import FusecpathError, UnknownModelError
from fusecpath.plugins import get_registry
from fusecpath.zoo import EncoderSpec, Level, check_level, env_key

__all__ = [
    "config_fms",
    "describe_encoder",
    "describe_encoders",
    "describe_plugins",
    "env_key",
    "fm_record",
    "fm_records",
    "get_spec",
    "list_encoders",
    "load_encoder",
    "missing_dependencies",
]

if TYPE_CHECKING:
    import torch


def list_encoders(level: Level | None = None, pattern: str | None = None) -> list[EncoderSpec]:
    """Every registered encoder, sorted by name; filter by level and a pattern like ``"uni*"``."""
    return get_registry().list(level=level, pattern=pattern)


def get_spec(name: str) -> EncoderSpec:
    """The spec of a registered encoder, by name or alias."""
    return get_registry().get(name)


def import_target(spec: EncoderSpec, target: str):
    """Import a spec's ``module:callable`` (its ``loader`` or ``architecture``)."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = " ".join(f"'{d}'" for d in spec.dependencies)
        hint = f"; `pip install {missing}` adds what it needs" if missing else ""
        raise FusecpathError(f"{spec.name}: cannot import {module_name} ({exc}){hint}") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise FusecpathError(f"{spec.name}: {module_name} has no {attr!r} ({target})") from exc


def load_encoder(
    name: str | EncoderSpec, device: str = "cpu", weights: str | Path | None = None
) -> torch.nn.Module:
    """Build an encoder in eval mode on ``device``; ``weights`` overrides where its weights come from."""
    spec = name if isinstance(name, EncoderSpec) else get_spec(name)
    if weights is not None and not spec.origin.has_weights:
        raise FusecpathError(
            f"{spec.name} is built in and has no weights to override; drop weights={weights}"
        )
    load = import_target(spec, spec.loader)
    module = load(spec, device, None if weights is None else Path(weights).expanduser())
    return module.eval().to(device)


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
    source, override = spec.origin, f"FUSECPATH_WEIGHTS_{env_key(spec.name)}=PATH"
    if source.kind == "builtin":
        return "built in: no downloaded weights"
    if source.kind == "url":
        return f"download by hand from {source.ref}{file}; give its path with {override}"
    if source.kind == "package":
        return f"comes with the package {source.ref}{file}; or give its path with {override}"
    where = "Hugging Face Hub" + (" dataset" if source.kind == "hf-dataset" else "")
    return f"{where} {source.repo_id}{file}; override with {override} or the [weights] table of the fusecpath config file"


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
        info["access"] = f"gated: accept the terms at {spec.origin.page}, then `hf auth login`"
    return info


def describe_encoders(level: Level | None = None, include_catalogue: bool = False) -> list[dict]:
    """``fusecpath models list --json``: one row per model (its FM record, aliases, install), sorted by name."""
    check_level(level)
    registry = get_registry()
    rows = [
        {
            **_listed(spec_record(e.spec, e.plugin)),
            "aliases": list(e.spec.aliases),
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
                    **_listed(catalogue_record(model)),
                    "aliases": [],
                    "installed": False,
                    "install": model.install,
                }
            )
    return sorted(rows, key=lambda r: r["name"])


# The FM record's fields a ``models list`` row shows, for installed and catalogued models alike.
LIST_FIELDS = ("name", "level", "embed_dim", "license", "gated", "source", "requires", "plugin")


def _listed(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record.get(key) for key in LIST_FIELDS}


def spec_record(spec: EncoderSpec, plugin: str) -> dict[str, Any]:
    """The FM record of an installed encoder: what fuse, checkpoints, cards and the Hub record of it."""
    return {
        "name": spec.name,
        "level": spec.level,
        "embed_dim": spec.embed_dim,
        "fingerprint": spec.fingerprint(),
        "mpp": spec.mpp,
        "read_px": spec.read_px,
        "requires": spec.requires,
        "source": spec.source,
        "license": spec.license,
        "gated": spec.gated,
        "plugin": plugin,
    }


def catalogue_record(model) -> dict[str, Any]:
    """The FM record of a catalogued model that is not installed (no fingerprint or geometry)."""
    return {
        "name": model.name,
        "level": model.level,
        "embed_dim": model.embed_dim,
        "requires": model.requires,
        "source": model.source,
        "license": model.license,
        "gated": model.gated,
        "plugin": model.distribution,
    }


def fm_record(name: str) -> dict[str, Any]:
    """The FM record of an installed encoder, by name or alias (UnknownModelError if not installed)."""
    registry = get_registry()
    spec = registry.get(name)
    return spec_record(spec, registry.plugin_of(spec.name))


def fm_records(names: Iterable[str]) -> list[dict[str, Any]]:
    """FM records of installed encoders, in the order given."""
    return [fm_record(name) for name in names]


def known_record(name: str) -> dict[str, Any]:
    """The installed record, else the catalogue's, else {} (a name neither knows)."""
    try:
        return fm_record(name)
    except UnknownModelError:
        pass
    from fusecpath.catalogue import load_catalogue

    return next((catalogue_record(m) for m in load_catalogue() if m.name == name), {})


def config_fms(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The FM records a fused config holds, each completed from ``known_record`` where it lacks a field.

    Reads ``config["fms"]`` (records or names), else ``patch_fms`` + ``slide_fms``.
    """
    raw = config.get("fms")
    if raw is None:
        raw = [*config.get("patch_fms", []), *config.get("slide_fms", [])]
    records = [dict(item) if isinstance(item, Mapping) else {"name": str(item)} for item in raw]
    for record in records:
        for key, value in known_record(record["name"]).items():
            record.setdefault(key, value)
    return records


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
