"""Push, pull and search fused checkpoints on the Hugging Face Hub with the real ``huggingface_hub`` client.

The token comes from where huggingface_hub looks (``HF_TOKEN``, then ``hf auth login``'s token file). It is
handed to the client and never printed, logged or written. Every failure is one ``HubError`` line.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fusecpath.api import config_fms
from fusecpath.checkpoint.card import render_card, task_of
from fusecpath.checkpoint.folder import (
    CARD,
    CONFIG,
    CheckpointError,
    _replace_dir,
    _write_sums,
    card_images,
    read_metrics,
    resolve_checkpoint_dir,
    verify_checkpoint,
)
from fusecpath.errors import FusecpathError

SEARCH_TAG = "fusecpath"


class HubError(FusecpathError):
    """The Hub refused a request or could not be reached."""


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


@contextmanager
def _hub_errors(action: str, repo_id: str | None = None) -> Iterator[None]:
    """Turn huggingface_hub / network exceptions into one HubError line (they never contain the token).

    Progress bars are shown only on a terminal: piped stderr stays one line per failure.
    """
    import httpx2
    from huggingface_hub import errors
    from huggingface_hub.utils import disable_progress_bars

    if not sys.stderr.isatty():
        disable_progress_bars()
    where = f" {repo_id}" if repo_id else ""
    try:
        yield
    except (httpx2.ConnectError, httpx2.TimeoutException, httpx2.NetworkError) as exc:
        raise HubError(
            f"{action}{where}: cannot reach the Hub at {_endpoint()} ({type(exc).__name__}); "
            "check the network or HF_ENDPOINT"
        ) from exc
    except errors.GatedRepoError as exc:
        raise HubError(
            f"{action}{where}: the repo is gated; accept its terms at {_endpoint()}/{repo_id}, "
            "then `hf auth login`"
        ) from exc
    except errors.RevisionNotFoundError as exc:
        raise HubError(f"{action}{where}: no such revision on the Hub") from exc
    except errors.RepositoryNotFoundError as exc:
        raise HubError(
            f"{action}{where}: repository not found, or private and your token may not read it; "
            "check the name and `hf auth login`"
        ) from exc
    except errors.LocalEntryNotFoundError as exc:
        raise HubError(
            f"{action}{where}: not in the local Hugging Face cache and the Hub cannot be reached "
            f"at {_endpoint()} (or HF_HUB_OFFLINE=1 is set); connect and pull it first"
        ) from exc
    except errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise HubError(
                f"{action}{where}: the Hub refused it (HTTP {status}): your token may not write to "
                "that namespace; use a token with write access (`hf auth login`) or another --repo"
            ) from exc
        server = exc.server_message or str(exc).splitlines()[0]
        raise HubError(f"{action}{where}: the Hub answered HTTP {status}: {server}") from exc


def _token() -> str:
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise HubError(
            "no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)"
        )
    return token


def _stage(folder: Path, repo_id: str, root: Path) -> Path:
    """A verified copy of the checkpoint whose model card names the repo (README and SHA256SUMS renewed)."""
    verify_checkpoint(folder)
    staged = root / "checkpoint"
    shutil.copytree(folder, staged, ignore=shutil.ignore_patterns(".cache"))
    config = json.loads((staged / CONFIG).read_text())
    (staged / CARD).write_text(
        render_card(config, read_metrics(staged), repo_id=repo_id, images=card_images(staged))
    )
    _write_sums(staged)
    return staged


def push(
    run_dir: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a checkpoint (or a run folder holding one) to ``repo_id`` in one commit; returns its URL.

    The repo is created if needed and gated before anything is uploaded when any fused FM is gated.
    A failure raises HubError and commits nothing.
    """
    from huggingface_hub import HfApi

    folder = resolve_checkpoint_dir(run_dir)
    token = _token()
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="fusecpath-push-") as tmp:
        staged = _stage(folder, repo_id, Path(tmp))
        config = json.loads((staged / CONFIG).read_text())
        gated = any(fm.get("gated") for fm in config_fms(config))
        with _hub_errors("push failed, nothing was committed to", repo_id):
            api.create_repo(repo_id, private=private, exist_ok=True)
            if gated:
                api.update_repo_settings(repo_id, gated="auto")
            if revision and revision != "main":
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            api.upload_folder(  # the commit also deletes files of an earlier checkpoint ("*")
                repo_id=repo_id,
                folder_path=staged,
                revision=revision,
                delete_patterns="*",
                commit_message=commit_message or f"fusecpath: fused {task_of(config)} model",
            )
    url = f"{_endpoint()}/{repo_id}"
    return f"{url}/tree/{revision}" if revision and revision != "main" else url


def download(repo_id: str, revision: str | None = None) -> Path:
    """The repo's snapshot in the Hugging Face cache (downloaded if needed), verified.

    A cached copy that fails verification is downloaded again when the Hub is reachable.
    """
    from huggingface_hub import constants, snapshot_download

    with _hub_errors("pull", repo_id):
        directory = Path(snapshot_download(repo_id, revision=revision))
    try:
        verify_checkpoint(directory)
    except CheckpointError as exc:
        if constants.is_offline_mode():
            raise CheckpointError(f"{repo_id}: {exc} (offline: unset HF_HUB_OFFLINE and pull again)") from exc
        with _hub_errors("pull", repo_id):
            directory = Path(snapshot_download(repo_id, revision=revision, force_download=True))
        try:
            verify_checkpoint(directory)
        except CheckpointError as again:
            raise CheckpointError(f"{repo_id} as stored on the Hub: {again}") from again
    return directory


def requirements(config: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per FM the config fuses: which plugin provides it, whether it is installed as fused, what to do."""
    from fusecpath.api import missing_dependencies
    from fusecpath.catalogue import load_catalogue
    from fusecpath.plugins import get_registry

    registry = get_registry()
    catalogue = {model.name: model for model in load_catalogue()}
    rows = []
    for fm in config_fms(config):
        name, wanted = fm["name"], fm.get("fingerprint")
        row = {
            "name": name,
            "level": fm.get("level"),
            "fingerprint": wanted,
            "plugin": fm.get("plugin"),
            "installed": name in registry,
            "ok": False,
            "install": None,
            "problem": None,
        }
        if name in registry:
            spec = registry.get(name)
            row["plugin"] = registry.plugin_of(name)
            missing = missing_dependencies(spec)
            if wanted and spec.fingerprint() != wanted:
                row["problem"] = (
                    f"{name}: the installed spec (plugin {row['plugin']}) has fingerprint "
                    f"{spec.fingerprint()}, the model was fused with {wanted}: a different "
                    f"version of the model; install the {row['plugin']} version the model was made with"
                )
            elif missing:
                row["install"] = "pip install " + " ".join(f"'{m}'" for m in missing)
                row["problem"] = f"{name} needs packages that are not installed: `{row['install']}`"
            else:
                row["ok"] = True
        else:
            entry = catalogue.get(name)
            plugin = entry.distribution if entry else fm.get("plugin")
            row["plugin"] = plugin
            row["install"] = entry.install if entry else (f"pip install {plugin}" if plugin else None)
            how = f"`{row['install']}`" if row["install"] else "no known plugin provides it"
            row["problem"] = f"{name} is not installed: {how}"
        rows.append(row)
    return rows


def pull(repo_id: str, revision: str | None = None, out: str | Path | None = None) -> dict[str, Any]:
    """Download into the HF cache, verify, optionally copy to ``out``; report the FMs the model needs."""
    directory = download(repo_id, revision)
    config = json.loads((directory / CONFIG).read_text())
    target = None
    if out is not None:
        target = Path(out)
        if target.exists() and any(target.iterdir()) and not (target / "SHA256SUMS").is_file():
            raise HubError(f"{target} exists and is not a fusecpath checkpoint: choose another --out")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            shutil.copytree(directory, tmp, dirs_exist_ok=True)
            verify_checkpoint(tmp)
            _replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return {
        "repo_id": repo_id,
        "revision": revision or "main",
        "commit": directory.name,
        "directory": str(directory),
        "out": str(target) if target else None,
        "files": len(verify_checkpoint(target or directory)),
        "task": task_of(config),
        "fms": requirements(config),
    }


def search(query: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Fused checkpoints on the Hub (tag ``fusecpath``) whose id matches ``query``."""
    from huggingface_hub import HfApi

    rows = []
    with _hub_errors("hub search"):
        models = HfApi().list_models(
            filter=SEARCH_TAG,
            search=query or None,
            limit=limit,
            expand=["cardData", "tags", "lastModified", "gated", "private"],
        )
        for info in models:
            card = info.card_data.to_dict() if info.card_data is not None else {}
            meta = card.get("fusecpath") or {}
            tags = info.tags or []
            task = meta.get("task") or next((t[5:] for t in tags if t.startswith("task-")), "unknown")
            rows.append(
                {
                    "id": info.id,
                    "task": task,
                    "fms": meta.get("fms") or [],
                    "license": card.get("license_name") or card.get("license"),
                    "gated": bool(info.gated),
                    "last_modified": info.last_modified.isoformat() if info.last_modified else None,
                }
            )
    return rows
