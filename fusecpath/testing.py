"""A pytest plugin and test helpers for fusecpath and its plugins (never imported by fusecpath itself).

``hf_cache`` is a fixture: an empty Hugging Face cache in a temporary folder, offline
(``HF_HUB_OFFLINE=1``), into which a test writes a repo's files with ``write_hf_cache``. Loaders then
find them exactly as they would find a real download. Load the plugin once, in pyproject.toml::

    [tool.pytest.ini_options]
    addopts = "-p fusecpath.testing"

(or ``pytest_plugins = ["fusecpath.testing"]`` in a conftest.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

WriteRepo = Callable[[str, Mapping[str, "bytes | Path"]], Path]


def write_hf_cache(
    cache_dir: Path, repo_id: str, files: Mapping[str, bytes | Path], revision: str | None = None
) -> Path:
    """Write ``files`` (repo path -> content or a file to copy) as the Hub client caches a download.

    Layout: ``models--org--name/blobs/<sha256>``, ``snapshots/<commit>/<path>`` (a relative symlink
    to the blob, as huggingface_hub makes it) and ``refs/main`` holding the commit. Returns the
    snapshot folder.
    """
    repo_dir = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    commit = revision or hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo_dir / "snapshots" / commit
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    for name, content in files.items():
        data = Path(content).read_bytes() if isinstance(content, Path) else bytes(content)
        blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
        if not blob.exists():
            blob.write_bytes(data)
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        try:
            target.symlink_to(os.path.relpath(blob, target.parent))
        except OSError:  # no symlinks (Windows without developer mode): the client copies too
            shutil.copyfile(blob, target)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteRepo]:
    """An empty offline Hugging Face cache; call the fixture value with (repo_id, files) to fill it."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # The client reads these variables once, at import; set what it read, as a fresh process would.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    # Keep the user's own weight locations out of the test.
    monkeypatch.setenv("FUSECPATH_CONFIG", str(tmp_path / "no-config.toml"))
    for key in [k for k in os.environ if k.startswith("FUSECPATH_WEIGHTS_")]:
        monkeypatch.delenv(key)
    yield lambda repo_id, files: write_hf_cache(cache, repo_id, files)


def reference_input(patches, spec):
    """What ``preprocess`` must give, computed independently with torchvision's functional transforms.

    ``patches``: uint8 (B, H, W, 3). Resize (antialiased) to ``resize_px`` or ``input_px``, centre-crop
    when ``spec.crop``, clamp to [0, 1], normalise: the torchvision recipe the FMs' authors publish.
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    modes = {
        "bilinear": InterpolationMode.BILINEAR,
        "bicubic": InterpolationMode.BICUBIC,
        "nearest": InterpolationMode.NEAREST,
    }
    x = patches.permute(0, 3, 1, 2).float() / 255.0
    size = (spec.resize_px or spec.input_px) if spec.crop else spec.input_px
    if x.shape[-1] != size or x.shape[-2] != size:
        x = TF.resize(x, [size, size], interpolation=modes[spec.interpolation], antialias=True).clamp(0, 1)
    if spec.crop:
        x = TF.center_crop(x, [spec.input_px, spec.input_px])
    return TF.normalize(x, list(spec.mean), list(spec.std))


def shrink(spec, arch: Mapping, **fields):
    """The spec with architecture kwargs ``arch`` overridden and spec ``fields`` replaced: a small model
    with the real model's layout and key names."""
    import dataclasses

    return dataclasses.replace(spec, arch={**spec.arch, **arch}, **fields)


def randomise_(module, seed: int = 0, scale: float = 0.1):
    """Fill every parameter with seeded noise, so a loaded checkpoint is told apart from an init."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    return module


def torch_bytes(state) -> bytes:
    """``torch.save(state)`` as bytes: what a ``pytorch_model.bin`` on the Hub holds."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()
