"""Encoder metadata and the registry of every encoder the installed plugins provide.

Plain data only: nothing here imports torch, so listing models stays fast.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from fusecpath.errors import UnknownModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Level = Literal["patch", "slide"]

# Fields that change what an encoder computes: they make up its fingerprint.
_FINGERPRINT_FIELDS = (
    "name",
    "level",
    "embed_dim",
    "source",
    "loader",
    "weights_file",
    "arch",
    "mpp",
    "read_px",
    "input_px",
    "resize_px",
    "crop",
    "interpolation",
    "mean",
    "std",
    "pooling",
    "requires",
)


@dataclass(frozen=True)
class EncoderSpec:
    """Everything fusecpath needs to know about one foundation model, without loading it.

    A patch encoder maps a float tensor (B, 3, input_px, input_px), already normalised with
    ``mean``/``std``, to (B, embed_dim). A slide encoder maps patch features (N, D) of the patch
    encoder it ``requires`` plus level-0 coords (N, 2) to (embed_dim,).
    """

    name: str
    level: Level
    embed_dim: int
    loader: str  # "module:callable", called with the spec, returns a torch.nn.Module
    source: str = "builtin"  # "builtin" or "hf-hub:org/name"
    weights_file: str | None = None  # file inside the hub repo, e.g. "pytorch_model.bin"
    arch: Mapping[str, Any] = field(default_factory=dict, compare=False)  # architecture kwargs
    # Read geometry (patch encoders): the patch is read at mpp µm/px, read_px wide ...
    mpp: float | None = 0.5
    read_px: int | None = 256
    # ... then resized to resize_px (None: straight to input_px), centre-cropped to input_px if crop.
    input_px: int | None = 224
    resize_px: int | None = None
    crop: bool = False
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    pooling: str = "cls"
    requires: str | None = None  # slide encoders: the patch encoder whose features they consume
    license: str = "unknown"
    gated: bool = False
    paper: str = ""
    description: str = ""
    aliases: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()  # pip requirements beyond fusecpath's own, e.g. "transformers>=4.40"

    def __post_init__(self) -> None:
        if self.level not in ("patch", "slide"):
            raise ValueError(f"{self.name}: level must be 'patch' or 'slide', not {self.level!r}")
        for key in (self.name, *self.aliases):
            if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", key):
                raise ValueError(f"model name {key!r}: use lower-case letters, digits, '.', '-', '_'")
        if ":" not in self.loader:
            raise ValueError(f"{self.name}: loader must be 'module:callable', not {self.loader!r}")
        if self.level == "slide":
            object.__setattr__(self, "mpp", None)
            object.__setattr__(self, "read_px", None)
            object.__setattr__(self, "input_px", None)
        object.__setattr__(self, "mean", tuple(self.mean))
        object.__setattr__(self, "std", tuple(self.std))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "dependencies", tuple(self.dependencies))

    @property
    def hub_repo(self) -> str | None:
        """The Hugging Face repo id, for specs whose source is ``hf-hub:org/name``."""
        return self.source.removeprefix("hf-hub:") if self.source.startswith("hf-hub:") else None

    @property
    def read_geometry(self) -> tuple[float, int] | None:
        """(mpp, read_px): encoders with equal geometry can share one read of the slide."""
        return None if self.mpp is None or self.read_px is None else (self.mpp, self.read_px)

    def fingerprint(self) -> str:
        """A short hash of the fields that change what the encoder computes."""
        data = {k: to_jsonable(getattr(self, k)) for k in _FINGERPRINT_FIELDS}
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {k: to_jsonable(v) for k, v in asdict(self).items()}


def to_jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class Registered:
    """A spec and the plugin distribution that registered it."""

    spec: EncoderSpec
    plugin: str


class Registry:
    """Name -> spec, with aliases. Built by ``fusecpath.plugins``; usable on its own in tests."""

    def __init__(self) -> None:
        self._entries: dict[str, Registered] = {}
        self._aliases: dict[str, str] = {}

    def claimed(self, name: str) -> str | None:
        """The plugin that already holds ``name`` as a model name or alias, if any."""
        canonical = self._aliases.get(name, name)
        entry = self._entries.get(canonical)
        return entry.plugin if entry else None

    def add(self, spec: EncoderSpec, plugin: str) -> None:
        for key in (spec.name, *spec.aliases):
            holder = self.claimed(key)
            if holder is not None:
                raise ValueError(f"model name {key!r} is registered by both {holder!r} and {plugin!r}")
        self._entries[spec.name] = Registered(spec, plugin)
        for alias in spec.aliases:
            self._aliases[alias] = spec.name

    def resolve(self, name: str) -> str:
        """The canonical name for a name or alias; raises UnknownModelError with close matches."""
        key = name.strip().lower()
        key = self._aliases.get(key, key)
        if key in self._entries:
            return key
        known = [*self._entries, *self._aliases]
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}: {hint}`fusecpath models list --all` shows every model "
            "and the plugin that adds it"
        )

    def get(self, name: str) -> EncoderSpec:
        return self._entries[self.resolve(name)].spec

    def plugin_of(self, name: str) -> str:
        return self._entries[self.resolve(name)].plugin

    def list(self, level: Level | None = None, pattern: str | None = None) -> list[EncoderSpec]:
        """Specs sorted by name, optionally filtered by level and a shell-style name pattern."""
        return [
            e.spec
            for name, e in sorted(self._entries.items())
            if (level is None or e.spec.level == level)
            and (pattern is None or fnmatch.fnmatch(name, pattern))
        ]

    def entries(self) -> Iterable[Registered]:
        return (self._entries[name] for name in sorted(self._entries))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._aliases.get(name, name) in self._entries

    def __len__(self) -> int:
        return len(self._entries)
