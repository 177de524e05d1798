"""The plugin manager: built-in encoders plus every distribution with a ``fusecpath`` entry point.

- Built-ins (``DEFAULT_PLUGINS``) are ordinary plugins, registered first.
- Each plugin's ``register_encoders`` implementation is called through pluggy, one plugin at a time.
- Every patch encoder gets a ``mean-<name>`` slide baseline (the mean of its patch features), listed
  under the patch encoder's plugin.
- ``FUSECPATH_LOAD_PLUGINS=a,b`` loads only those distributions ("" loads none beyond the built-ins).
- A broken plugin (import error, hook error, a model name another plugin holds) is skipped whole with
  one warning naming the distribution and how to remove it; ``FUSECPATH_STRICT_PLUGINS=1`` raises instead.
  Plugins load in a fixed order (built-ins, then distributions by entry-point name), so when two claim
  one name the later one is skipped, and the message names both.
"""

from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from fusecpath import hookspecs
from fusecpath.errors import PluginError
from fusecpath.zoo import EncoderSpec, Registry, mean_pool_spec

ENTRY_POINT_GROUP = "fusecpath"
DEFAULT_PLUGINS = ("fusecpath.encoders.builtin",)
BUILTIN = "fusecpath"  # the distribution name shown for built-in plugins

pm = pluggy.PluginManager("fusecpath")
pm.add_hookspecs(hookspecs)


class PluginWarning(UserWarning):
    """A plugin was skipped; fusecpath goes on without it."""


@dataclass
class PluginInfo:
    """What ``fusecpath plugins`` shows for one registered plugin."""

    name: str  # the plugin's name in the plugin manager
    distribution: str
    version: str | None
    hooks: list[str]
    models: list[str] = field(default_factory=list)


_loaded = False
_dists: dict[str, tuple[str, str | None]] = {}  # plugin name -> (distribution, version)
_cache: tuple[tuple, Registry, list[PluginInfo]] | None = None


def _strict() -> bool:
    return os.environ.get("FUSECPATH_STRICT_PLUGINS", "").lower() in ("1", "true", "yes")


def _problem(distribution: str, what: str) -> None:
    remedy = (
        "fusecpath is broken: reinstall it"
        if distribution == BUILTIN
        else f"skipped; `pip uninstall {distribution}` removes it"
    )
    message = f"plugin {distribution!r} {what}; {remedy}"
    if _strict():
        raise PluginError(message)
    warnings.warn(message, PluginWarning, stacklevel=3)


def _wanted() -> set[str] | None:
    raw = os.environ.get("FUSECPATH_LOAD_PLUGINS")
    if raw is None:
        return None
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def load_plugins() -> None:
    """Register the built-ins and the entry-point plugins, once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module_name in DEFAULT_PLUGINS:
        if pm.get_plugin(module_name) is None:
            pm.register(importlib.import_module(module_name), name=module_name)
            _dists[module_name] = (BUILTIN, _version(BUILTIN))
    wanted = _wanted()
    eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    for ep in eps:
        dist = ep.dist.name if ep.dist else ep.name
        version = ep.dist.version if ep.dist else None
        if wanted is not None and dist.lower() not in wanted and ep.name.lower() not in wanted:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            module = ep.load()
        except Exception as exc:  # noqa: BLE001 - any plugin failure is isolated
            _problem(dist, f"failed to import ({type(exc).__name__}: {exc})")
            continue
        pm.register(module, name=ep.name)
        _dists[ep.name] = (dist, version)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _collect() -> tuple[Registry, list[PluginInfo]]:
    registry = Registry()
    infos = []
    # Built-ins first so that no plugin can shadow them; then in registration order.
    plugins = pm.list_name_plugin()
    for name, plugin in plugins:
        dist, version = _dists.get(name, (name, None))
        hooks = [h.name for h in pm.get_hookcallers(plugin) or []]
        info = PluginInfo(name=name, distribution=dist, version=version, hooks=sorted(hooks))
        infos.append(info)
        if "register_encoders" not in hooks:
            continue
        # This plugin's implementation alone, called through pluggy (so a failure is this plugin's).
        others = [other for other_name, other in plugins if other_name != name]
        specs: list[EncoderSpec] = []
        try:
            pm.subset_hook_caller("register_encoders", remove_plugins=others)(register=specs.append)
            for spec in specs:
                if not isinstance(spec, EncoderSpec):
                    raise TypeError(f"register() takes an EncoderSpec, got {type(spec).__name__}")
        except Exception as exc:  # noqa: BLE001 - any plugin failure is isolated
            _problem(dist, f"raised in register_encoders ({type(exc).__name__}: {exc})")
            continue
        if clash := _first_clash(registry, specs, dist):
            _problem(dist, clash)
            continue
        for spec in specs:
            registry.add(spec, dist)
        info.models = sorted(s.name for s in specs)
    _add_mean_baselines(registry)
    return registry, infos


def _add_mean_baselines(registry: Registry) -> None:
    """``mean-<fm>`` for every patch FM, listed under the FM's plugin (unless a plugin registers that name).

    ``PluginInfo.models`` stays what each plugin registered itself.
    """
    for spec in registry.list(level="patch"):
        baseline = mean_pool_spec(spec)
        if registry.claimed(baseline.name) is None:
            registry.add(baseline, registry.plugin_of(spec.name))


def _first_clash(registry: Registry, specs: list[EncoderSpec], dist: str) -> str | None:
    """A message for the first name this plugin would take from another (or register twice)."""
    seen: set[str] = set()
    for spec in specs:
        for key in (spec.name, *spec.aliases):
            holder = registry.claimed(key) or (dist if key in seen else None)
            if holder is not None:
                return f"registers model name {key!r}, which {holder!r} already registers"
            seen.add(key)
    return None


def _state() -> tuple[Registry, list[PluginInfo]]:
    global _cache
    load_plugins()
    key = (_strict(), *((name, id(plugin)) for name, plugin in pm.list_name_plugin()))
    if _cache is None or _cache[0] != key:
        registry, infos = _collect()
        _cache = (key, registry, infos)
    return _cache[1], _cache[2]


def get_registry() -> Registry:
    """The registry of every model the loaded plugins provide (rebuilt when plugins change)."""
    return _state()[0]


def get_plugins() -> list[PluginInfo]:
    """One entry per loaded plugin: distribution, version, hooks and models."""
    return _state()[1]
