"""Where an encoder's weights come from, in order:

1. an explicit path (``load_encoder(name, weights=PATH)``);
2. ``FUSECPATH_WEIGHTS_<NAME>`` or the ``[weights]`` table of the config file
   (``$FUSECPATH_CONFIG``, else ``$XDG_CONFIG_HOME/fusecpath/config.toml``);
3. the Hugging Face cache (works with ``HF_HUB_OFFLINE=1``);
4. a download with the user's token.

Safetensors is read as it is; a pickle checkpoint only with ``torch.load(weights_only=True)``.
Every failure is one line that says what to do; the token is never printed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fusecpath.errors import WeightsError
from fusecpath.zoo import EncoderSpec, env_key

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    import torch


def config_path() -> Path:
    if explicit := os.environ.get("FUSECPATH_CONFIG"):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "fusecpath" / "config.toml"


def configured_path(spec: EncoderSpec) -> Path | None:
    """The user's own location for this model's weights: env var first, then the config file."""
    if value := os.environ.get(f"FUSECPATH_WEIGHTS_{env_key(spec.name)}"):
        return Path(value).expanduser()
    path = config_path()
    if not path.is_file():
        return None
    try:
        table = tomllib.loads(path.read_text()).get("weights", {})
    except tomllib.TOMLDecodeError as exc:
        raise WeightsError(f"{path}: not valid TOML ({exc}); fix or remove it") from exc
    value = table.get(spec.name)
    return Path(value).expanduser() if value else None


def _in_directory(path: Path, filename: str | None, spec: EncoderSpec) -> Path:
    if path.is_dir():
        if not filename:
            return path
        path = path / filename
    if not path.exists():
        raise WeightsError(f"{spec.name}: weights not found at {path}")
    return path


def resolve_weights(spec: EncoderSpec, filename: str | None = None, explicit: Path | None = None) -> Path:
    """A local path to ``filename`` of the spec's weights (or its folder when filename is None)."""
    filename = filename or spec.weights_file
    if explicit is not None:
        return _in_directory(Path(explicit).expanduser(), filename, spec)
    if configured := configured_path(spec):
        return _in_directory(configured, filename, spec)
    source, override = spec.origin, f"FUSECPATH_WEIGHTS_{env_key(spec.name)}=PATH"
    if source.kind == "url":
        what = filename or "its weights"
        raise WeightsError(
            f"{spec.name}: {what} is not on the Hugging Face Hub; download it from {source.ref} and set {override}"
        )
    if source.kind == "package":
        raise WeightsError(
            f"{spec.name}: its weights come with `pip install '{source.ref}'`; or set {override}"
        )
    if source.repo_id is None:
        raise WeightsError(f"{spec.name}: no weights source; set {override}")
    if filename is None:
        return hub_snapshot(spec)
    return hub_file(spec, filename)


def hub_file(spec: EncoderSpec, filename: str) -> Path:
    """``filename`` of the spec's Hub repo (model or dataset): the cache first, else a download."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    repo, repo_type = spec.origin.repo_id, spec.origin.repo_type
    cached = try_to_load_from_cache(repo, filename, repo_type=repo_type)
    if isinstance(cached, str):
        return Path(cached)
    try:
        return Path(hf_hub_download(repo, filename, repo_type=repo_type, library_name="fusecpath"))
    except Exception as exc:  # noqa: BLE001 - mapped to one line below
        raise hub_error(spec, exc) from None


def hub_snapshot(spec: EncoderSpec, allow_patterns: list[str] | None = None) -> Path:
    """The spec's whole hub repo (or the files matching ``allow_patterns``) as a local folder."""
    from huggingface_hub import snapshot_download

    repo, repo_type = spec.origin.repo_id, spec.origin.repo_type
    if repo is None:
        raise WeightsError(f"{spec.name}: not a Hugging Face repo (source {spec.source})")
    for local_only in (True, False):
        try:
            return Path(
                snapshot_download(
                    repo,
                    repo_type=repo_type,
                    allow_patterns=allow_patterns,
                    local_files_only=local_only,
                    library_name="fusecpath",
                )
            )
        except Exception as exc:  # noqa: BLE001 - mapped to one line below
            if not local_only:
                raise hub_error(spec, exc) from None
    raise AssertionError("unreachable")


def hub_error(spec: EncoderSpec, exc: Exception) -> WeightsError:
    """One actionable line for a failed download. Never includes the token."""
    from huggingface_hub import errors

    repo, url, download = spec.hub_repo, spec.origin.page, spec.origin.download_command()
    override = f"FUSECPATH_WEIGHTS_{env_key(spec.name)}=PATH"
    if isinstance(exc, errors.GatedRepoError):
        return WeightsError(f"{spec.name}: {repo} is gated; accept its terms at {url}, then `hf auth login`")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return WeightsError(
            f"{spec.name}: {repo} was not found or needs a token; `hf auth login` (or set HF_TOKEN), "
            f"and accept its terms at {url} if it is gated"
        )
    # LocalEntryNotFoundError is an EntryNotFoundError, and a missing remote file is an OSError.
    if isinstance(exc, (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled)) or (
        isinstance(exc, OSError) and not isinstance(exc, errors.EntryNotFoundError)
    ):
        steps = (
            f"accept its terms at {url}, `hf auth login`, then `{download}`"
            if spec.gated
            else f"`{download}` ({url})"
        )
        return WeightsError(
            f"{spec.name}: weights are not in the Hugging Face cache and the Hub cannot be reached; "
            f"on a machine with network {steps}, or set {override}"
        )
    if isinstance(exc, errors.EntryNotFoundError):
        return WeightsError(
            f"{spec.name}: {repo} has no file {spec.weights_file!r}; check the plugin version"
        )
    return WeightsError(f"{spec.name}: downloading {repo} failed ({type(exc).__name__}); set {override}")


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file, or from a pickle with ``weights_only=True`` (never full unpickling)."""
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickles with code are refused, not run
        raise WeightsError(
            f"{path}: not loadable with weights_only=True ({type(exc).__name__}); "
            "fusecpath never unpickles arbitrary objects; convert it to safetensors"
        ) from None
    for key in ("state_dict", "model", "teacher"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    return state
