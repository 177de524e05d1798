"""The fused checkpoint folder: a self-describing, checksummed, pickle-free directory.

::

    model.safetensors   the weights (safetensors only: loading can never run code)
    config.json         everything needed to rebuild the model and to check its FMs
    metrics.json        the cross-validated results (optional)
    README.md           a Hugging Face model card (YAML front matter + body)
    plots/...           any extra files the run wants to ship (optional)
    SHA256SUMS          sha256 of every other file, ``sha256sum -c`` compatible

Folders are written to a temporary sibling and renamed into place; every checksum is verified on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusecpath.errors import FusecpathError

if TYPE_CHECKING:
    import torch

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"
CARD = "README.md"
SUMS = "SHA256SUMS"
FORMAT_VERSION = 1
# Extensions of pickle-based checkpoints: unpickling runs arbitrary code, so they are never loaded.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
# Files a Hub repo may hold next to the checkpoint without being part of it.
_IGNORED = (".gitattributes",)


class CheckpointError(FusecpathError):
    """A checkpoint folder that is missing, incomplete, tampered with or unsafe."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    """json.dump ``default``: numpy / torch scalars and arrays, paths."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dump_json(data: Mapping[str, Any], path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, default=_jsonable, allow_nan=True) + "\n")


def _safe_relpath(name: str) -> str:
    """A forward-slash relative path that stays inside the folder."""
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise CheckpointError(f"extra file name {name!r} must be a relative path inside the checkpoint")
    return rel.as_posix()


def _refuse_pickle(name: str) -> None:
    if name.lower().endswith(PICKLE_SUFFIXES):
        raise CheckpointError(
            f"{name} is a pickle checkpoint, which can run arbitrary code when loaded: fusecpath reads "
            f"safetensors only (convert it with safetensors.torch.save_file and ship {WEIGHTS})"
        )


def is_checkpoint(directory: Path) -> bool:
    return (Path(directory) / SUMS).is_file()


def write_checkpoint(
    directory: str | Path,
    state_dict: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    files: Mapping[str, str | Path] | None = None,
) -> Path:
    """Write a checkpoint folder atomically and return its path.

    ``files`` maps names inside the checkpoint (``"plots/roc.png"``) to files to copy in. An existing
    checkpoint folder (or an empty folder) at ``directory`` is replaced; any other folder is refused.
    """
    from safetensors.torch import save_file

    from fusecpath import __version__
    from fusecpath.checkpoint.card import render_card

    directory = Path(directory)
    if directory.exists() and not (
        directory.is_dir() and (is_checkpoint(directory) or not any(directory.iterdir()))
    ):
        raise CheckpointError(f"{directory} exists and is not a fusecpath checkpoint: choose another folder")
    extra = {_safe_relpath(name): Path(src) for name, src in (files or {}).items()}
    reserved = {WEIGHTS, CONFIG, METRICS, CARD, SUMS}
    for name, src in extra.items():
        _refuse_pickle(name)
        if name in reserved:
            raise CheckpointError(f"extra file {name!r} would overwrite the checkpoint's own {name}")
        if not src.is_file():
            raise CheckpointError(f"extra file {src} for {name!r} does not exist")
    config = {**config}
    config.setdefault("fusecpath_version", __version__)
    config.setdefault("checkpoint_format", FORMAT_VERSION)

    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": "pt"})
        _dump_json(config, tmp / CONFIG)
        if metrics is not None:
            _dump_json(metrics, tmp / METRICS)
        for name, src in extra.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / name)
        (tmp / CARD).write_text(render_card(config, metrics, images=card_images(tmp)))
        _write_sums(tmp)
        _replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def card_images(directory: Path) -> list[str]:
    """The PNG plots a checkpoint ships, for its model card."""
    return [name for name in _listed_files(directory) if name.lower().endswith(".png")]


def _listed_files(directory: Path) -> list[str]:
    """Every file under ``directory`` except SHA256SUMS and Hub bookkeeping, as sorted posix paths."""
    names = []
    for root, _, filenames in os.walk(directory):
        for filename in filenames:
            rel = (Path(root) / filename).relative_to(directory).as_posix()
            if rel != SUMS and rel not in _IGNORED and not rel.startswith(".cache/"):
                names.append(rel)
    return sorted(names)


def _write_sums(directory: Path) -> None:
    lines = [f"{sha256_file(directory / name)}  {name}\n" for name in _listed_files(directory)]
    (directory / SUMS).write_text("".join(lines))


def _replace_dir(tmp: Path, directory: Path) -> None:
    """Rename ``tmp`` to ``directory``; an old checkpoint there is moved aside first, then removed."""
    old = None
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
        os.replace(directory, old)
    try:
        os.replace(tmp, directory)
    except BaseException:
        if old is not None:
            os.replace(old, directory)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_sums(directory: Path) -> dict[str, str]:
    """name -> sha256 from SHA256SUMS."""
    path = Path(directory) / SUMS
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a fusecpath checkpoint: it has no {SUMS}")
    sums = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line.strip())
        if not match:
            raise CheckpointError(f"{path}, line {number}: not a 'sha256  name' line; the file is damaged")
        sums[_safe_relpath(match.group(2))] = match.group(1)
    return sums


def verify_checkpoint(directory: str | Path) -> dict[str, str]:
    """Check the folder is complete, pickle-free and untouched; return its checksums."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint folder")
    present = _listed_files(directory)
    for name in present:
        _refuse_pickle(name)
    sums = read_sums(directory)
    for required in (WEIGHTS, CONFIG):
        if required not in sums:
            raise CheckpointError(f"{directory}: {SUMS} does not list {required}; not a complete checkpoint")
    for name, expected in sums.items():
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"{directory}: {name} is missing; download the checkpoint again")
        if sha256_file(path) != expected:
            raise CheckpointError(
                f"{directory}: {name} does not match its sha256 in {SUMS}; the file was modified or "
                "damaged: download the checkpoint again and do not edit it"
            )
    unlisted = sorted(set(present) - set(sums))
    if unlisted:
        raise CheckpointError(
            f"{directory}: {', '.join(unlisted)} not listed in {SUMS}; files were added after the checkpoint "
            "was written"
        )
    return sums


def resolve_checkpoint_dir(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder holding one in ``model/`` (as ``fuse`` writes) or ``checkpoint/``."""
    path = Path(path)
    for candidate in (path, path / "model", path / "checkpoint"):
        if is_checkpoint(candidate):
            return candidate
    if path.is_dir():
        for name in _listed_files(path):
            _refuse_pickle(name)
        raise CheckpointError(f"{path} holds no fusecpath checkpoint ({SUMS} with {WEIGHTS}, {CONFIG})")
    raise CheckpointError(f"{path}: no such folder")


def looks_like_repo_id(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", value))


def locate(dir_or_repo_id: str | Path, revision: str | None = None) -> Path:
    """A local checkpoint folder, or a Hub repo id downloaded (or found) in the Hugging Face cache."""
    path = Path(dir_or_repo_id)
    if path.exists() or not looks_like_repo_id(str(dir_or_repo_id)):
        if revision is not None:
            raise CheckpointError(f"--revision applies to Hub repos, not to the local folder {path}")
        return resolve_checkpoint_dir(path)
    from fusecpath.checkpoint.hub import HubError, download

    try:
        return download(str(dir_or_repo_id), revision=revision)
    except HubError as exc:
        raise HubError(f"{exc} (and there is no local folder {path})") from exc


def read_checkpoint(
    dir_or_repo_id: str | Path, revision: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any], Path]:
    """(state_dict, config, directory) after verifying every checksum; pickle files are refused."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = locate(dir_or_repo_id, revision)
    verify_checkpoint(directory)
    try:
        config = json.loads((directory / CONFIG).read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{directory / CONFIG} is not valid JSON ({exc})") from exc
    fmt = config.get("checkpoint_format", FORMAT_VERSION)
    if not isinstance(fmt, int) or fmt > FORMAT_VERSION:
        raise CheckpointError(
            f"{directory}: checkpoint format {fmt} is newer than this fusecpath reads ({FORMAT_VERSION}); "
            "upgrade fusecpath"
        )
    try:
        state_dict = load_file(str(directory / WEIGHTS))
    except SafetensorError as exc:
        raise CheckpointError(f"{directory / WEIGHTS} is not a readable safetensors file ({exc})") from exc
    return state_dict, config, directory


def read_metrics(directory: Path) -> dict[str, Any] | None:
    path = Path(directory) / METRICS
    return json.loads(path.read_text()) if path.is_file() else None


_BOOKKEEPING = ("fusecpath_version", "checkpoint_format")


class CheckpointMixin:
    """``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` for a torch module.

    The class needs a JSON-able ``config`` dict attribute and a ``from_config(config)`` classmethod that
    builds an untrained instance from it (``config`` as saved, less fusecpath's own bookkeeping keys).
    """

    config: dict[str, Any]

    @classmethod
    def from_config(cls, config: dict[str, Any]):  # pragma: no cover - the subclass provides it
        raise NotImplementedError(f"{cls.__name__} must define from_config(config)")

    def save_pretrained(
        self,
        directory: str | Path,
        metrics: Mapping[str, Any] | None = None,
        files: Mapping[str, str | Path] | None = None,
    ) -> Path:
        return write_checkpoint(directory, self.state_dict(), self.config, metrics=metrics, files=files)

    @classmethod
    def from_pretrained(cls, dir_or_repo_id: str | Path, revision: str | None = None):
        """Build the model from a checkpoint folder or a Hub repo id, in eval mode, after verifying it."""
        return cls.from_checkpoint(*read_checkpoint(dir_or_repo_id, revision=revision))

    @classmethod
    def from_checkpoint(cls, state_dict: Mapping[str, torch.Tensor], config: dict[str, Any], directory: Path):
        """Build the model from what ``read_checkpoint`` returned."""
        model = cls.from_config({k: v for k, v in config.items() if k not in _BOOKKEEPING})
        try:
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())[:300]
            raise CheckpointError(
                f"{directory / WEIGHTS} does not fit the architecture in {CONFIG}: {detail}"
            ) from exc
        model.checkpoint_dir = directory
        return model.eval()

    def push_to_hub(
        self,
        repo_id: str,
        private: bool = False,
        revision: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        files: Mapping[str, str | Path] | None = None,
    ) -> str:
        """Save to a temporary folder and push it to the Hub in one commit; returns the repo URL."""
        from fusecpath.checkpoint.hub import push

        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "checkpoint", metrics=metrics, files=files)
            return push(folder, repo_id, private=private, revision=revision)
