"""Encoder metadata and the registry of every encoder the installed plugins provide.

Plain data only: nothing here imports torch, so listing models stays fast.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from fusecpath.errors import FusecpathError, SpecError, UnknownModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Level = Literal["patch", "slide"]
Precision = Literal["fp32", "fp16", "bf16"]
Interpolation = Literal["bilinear", "bicubic", "nearest"]
# How an encoder's output becomes one embedding. The first five are computed by the core's loaders
# (timm_vit, hf_vit); "attention" is a learned attention pooling (ABMIL, an attentional pooler query) and
# "model" the model's own embedding head. The description says the details.
Pooling = Literal["cls", "cls+mean", "mean", "pooler", "timm", "attention", "model"]
LEVELS: tuple[str, ...] = get_args(Level)
PRECISIONS: tuple[str, ...] = get_args(Precision)
INTERPOLATIONS: tuple[str, ...] = get_args(Interpolation)
POOLINGS: tuple[str, ...] = get_args(Pooling)

# Fields that change what an encoder computes: they make up its fingerprint. Labels (licence, paper,
# description, aliases, dependencies) and where the code lives (loader, architecture) are not in it.
FINGERPRINT_FIELDS = (
    "name",
    "level",
    "embed_dim",
    "source",
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
    "precision",
    "pooling",
    "requires",
)
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def env_key(name: str) -> str:
    """``conch-v1.5`` -> ``CONCH_V1_5`` (for FUSECPATH_WEIGHTS_<NAME>)."""
    return "".join(c if c.isalnum() else "_" for c in name).upper()


class FrozenMap(Mapping[str, Any]):
    """A read-only, hashable, picklable mapping; nested mappings and lists are frozen too."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()):
        self._data = {str(k): freeze(v) for k, v in dict(data).items()}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


def freeze(value: Any) -> Any:
    """Mappings as FrozenMap, lists and tuples as tuples, all the way down."""
    if isinstance(value, Mapping):
        return value if isinstance(value, FrozenMap) else FrozenMap(value)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def to_jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


SourceKind = Literal["builtin", "hf-model", "hf-dataset", "url", "package"]
_PREFIXES: dict[str, SourceKind] = {
    "hf-hub:": "hf-model",
    "hf-dataset:": "hf-dataset",
    "url:": "url",
    "package:": "package",
}


@dataclass(frozen=True)
class Source:
    """Where an encoder's weights come from, parsed from a spec's ``source`` string:

    ``builtin`` (no weights), ``hf-hub:org/name`` (a Hub model repo), ``hf-dataset:org/name`` (a Hub dataset
    repo), ``url:https://...`` (a page the user downloads from by hand), ``package:<pip requirement>``
    (weights that come with a package).
    """

    kind: SourceKind
    ref: str = ""  # the repo id, URL or pip requirement

    @classmethod
    def parse(cls, text: str) -> Source:
        if text == "builtin":
            return cls("builtin")
        for prefix, kind in _PREFIXES.items():
            if text.startswith(prefix) and text[len(prefix) :].strip():
                ref = text[len(prefix) :]
                if kind.startswith("hf-") and not re.fullmatch(r"[\w.-]+/[\w.-]+", ref):
                    raise SpecError(f"source {text!r}: a Hub repo id is 'org/name'")
                return cls(kind, ref)
        raise SpecError(
            f"source {text!r}: use 'builtin', 'hf-hub:org/name', 'hf-dataset:org/name', 'url:URL' or 'package:REQ'"
        )

    def __str__(self) -> str:
        prefix = {kind: prefix for prefix, kind in _PREFIXES.items()}.get(self.kind)
        return f"{prefix}{self.ref}" if prefix else "builtin"

    @property
    def repo_id(self) -> str | None:
        """The Hub repo id (``org/name``) of a Hub source, else None."""
        return self.ref if self.kind in ("hf-model", "hf-dataset") else None

    @property
    def repo_type(self) -> str | None:
        """``"model"`` or ``"dataset"`` for a Hub source (huggingface_hub's ``repo_type``), else None."""
        return {"hf-model": "model", "hf-dataset": "dataset"}.get(self.kind)

    @property
    def has_weights(self) -> bool:
        return self.kind != "builtin"

    @property
    def page(self) -> str | None:
        """A web page to read the model's terms and get its weights."""
        if self.kind == "hf-model":
            return f"https://huggingface.co/{self.ref}"
        if self.kind == "hf-dataset":
            return f"https://huggingface.co/datasets/{self.ref}"
        return self.ref if self.kind == "url" else None

    def download_command(self) -> str | None:
        """The ``hf download`` command that fetches a Hub source."""
        if self.repo_id is None:
            return None
        return f"hf download {self.repo_id}" + (" --repo-type dataset" if self.kind == "hf-dataset" else "")


@dataclass(frozen=True)
class EncoderSpec:
    """Everything fusecpath needs to know about one foundation model, without loading it.

    A patch encoder maps a float tensor (B, 3, input_px, input_px), already normalised with
    ``mean``/``std``, to (B, embed_dim). A slide encoder maps patch features (N, D) of the patch
    encoder it ``requires`` plus level-0 coords (N, 2) to (embed_dim,).

    ``loader`` names ``load(spec, device, weights=None) -> nn.Module``; ``architecture`` (optional) names
    ``architecture(spec) -> nn.Module``, the model with random weights, built on the meta device by
    ``fusecpath models verify``. Both are ``"module:callable"`` and imported only when used.
    """

    name: str
    level: Level
    embed_dim: int
    loader: str
    architecture: str | None = None
    source: str = "builtin"  # see Source
    weights_file: str | None = None  # file inside the hub repo, e.g. "pytorch_model.bin"
    arch: Mapping[str, Any] = field(default_factory=FrozenMap)  # architecture kwargs, frozen
    # Read geometry (patch encoders): the patch is read at mpp µm/px, read_px wide ...
    mpp: float | None = 0.5
    read_px: int | None = 256
    # ... then resized to resize_px (None: straight to input_px), centre-cropped to input_px if crop.
    input_px: int | None = 224
    resize_px: int | None = None
    crop: bool = False
    interpolation: Interpolation = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    precision: Precision = "fp32"
    pooling: Pooling = "cls"
    requires: str | None = None  # slide encoders: the patch encoder whose features they consume
    license: str = "unknown"
    gated: bool = False
    paper: str = ""
    description: str = ""
    aliases: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()  # pip requirements beyond fusecpath's own, e.g. "transformers>=4.40"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for key in (self.name, *self.aliases):
            if not isinstance(key, str) or not _NAME.fullmatch(key):
                raise SpecError(f"model name {key!r}: use lower-case letters, digits, '.', '-', '_'")
        self._choice("level", LEVELS)
        self._choice("precision", PRECISIONS)
        self._choice("interpolation", INTERPOLATIONS)
        self._choice("pooling", POOLINGS)
        for attr in ("loader", "architecture"):
            target = getattr(self, attr)
            if not (target is None and attr == "architecture") and not re.fullmatch(
                r"[\w.]+:\w+", str(target)
            ):
                raise SpecError(f"{self.name}: {attr} must be 'module:callable', not {target!r}")
        Source.parse(self.source)  # raises on a source it cannot read
        if not isinstance(self.embed_dim, int) or self.embed_dim < 1:
            raise SpecError(f"{self.name}: embed_dim must be a positive int, not {self.embed_dim!r}")
        if self.level == "slide":
            set_(self, "mpp", None)
            set_(self, "read_px", None)
            set_(self, "input_px", None)
        else:
            if self.requires is not None:
                raise SpecError(f"{self.name}: only slide encoders have requires=")
            for attr in ("mpp", "read_px", "input_px"):
                value = getattr(self, attr)
                if not isinstance(value, (int, float)) or value <= 0:
                    raise SpecError(f"{self.name}: a patch encoder needs a positive {attr}, not {value!r}")
        for attr in ("mean", "std"):
            value = tuple(getattr(self, attr))
            if len(value) != 3:
                raise SpecError(f"{self.name}: {attr} needs 3 values (R, G, B), not {len(value)}")
            set_(self, attr, value)
        set_(self, "arch", freeze(self.arch))
        set_(self, "aliases", tuple(self.aliases))
        set_(self, "dependencies", tuple(self.dependencies))

    def _choice(self, attr: str, allowed: tuple[str, ...]) -> None:
        value = getattr(self, attr)
        if value not in allowed:
            raise SpecError(f"{self.name}: {attr} must be one of {', '.join(allowed)}, not {value!r}")

    @property
    def origin(self) -> Source:
        """The parsed ``source``."""
        return Source.parse(self.source)

    @property
    def hub_repo(self) -> str | None:
        """The Hugging Face repo id, for specs whose weights are on the Hub (model or dataset repo)."""
        return self.origin.repo_id

    @property
    def read_geometry(self) -> tuple[float, int] | None:
        """(mpp, read_px): encoders with equal geometry can share one read of the slide."""
        return None if self.mpp is None or self.read_px is None else (self.mpp, self.read_px)

    def fingerprint(self) -> str:
        """A short hash of the fields that change what the encoder computes (``FINGERPRINT_FIELDS``)."""
        data = {k: to_jsonable(getattr(self, k)) for k in FINGERPRINT_FIELDS}
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: to_jsonable(getattr(self, f.name)) for f in fields(self)}


def mean_pool_spec(patch: EncoderSpec) -> EncoderSpec:
    """``mean-<fm>``: the slide baseline every patch FM gets, the mean of a slide's patch features."""
    return EncoderSpec(
        name=f"mean-{patch.name}",
        level="slide",
        embed_dim=patch.embed_dim,
        loader="fusecpath.encoders.pooling:load",
        architecture="fusecpath.encoders.pooling:architecture",
        requires=patch.name,
        license=patch.license,
        pooling="mean",
        description=f"Slide embedding = mean of the slide's {patch.name} patch features.",
    )


@dataclass(frozen=True)
class Registered:
    """A spec and the plugin distribution that registered it."""

    spec: EncoderSpec
    plugin: str


def check_level(level: str | None) -> None:
    """A level filter must be None, 'patch' or 'slide'."""
    if level is not None and level not in LEVELS:
        raise FusecpathError(f"level {level!r}: use 'patch' or 'slide'")


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
        check_level(level)
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
