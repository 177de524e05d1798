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


# How far fusecpath's preprocessed input may be from the FM authors' own pipeline, in grey levels of
# the uint8 image before ToTensor (docs/preprocessing.md): at any pixel, and on average.
PREPROCESS_MAX_GREY = 2.0
PREPROCESS_MEAN_GREY = 0.1


def reference_input(patches, spec):
    """The FM authors' pipeline on each patch, independently of fusecpath: a PIL image through
    torchvision's transforms, ``Resize`` (PIL's filter on uint8) to ``resize_px`` or ``input_px``,
    ``CenterCrop`` when ``spec.crop``, ``ToTensor``, ``Normalize``. ``patches``: uint8 (B, H, W, 3)."""
    import torch
    from PIL import Image
    from torchvision import transforms as T

    modes = {
        "bilinear": T.InterpolationMode.BILINEAR,
        "bicubic": T.InterpolationMode.BICUBIC,
        "nearest": T.InterpolationMode.NEAREST,
    }
    size = (spec.resize_px or spec.input_px) if spec.crop else spec.input_px
    steps = [T.Resize((size, size), interpolation=modes[spec.interpolation])]
    if spec.crop:
        steps.append(T.CenterCrop(spec.input_px))
    transform = T.Compose([*steps, T.ToTensor(), T.Normalize(spec.mean, spec.std)])
    return torch.stack([transform(Image.fromarray(p)) for p in patches.cpu().numpy()])


def input_difference(actual, expected, spec) -> tuple[float, float]:
    """(max, mean) absolute difference of two normalised inputs, in grey levels (0-255)."""
    import torch

    std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1)
    grey = (actual.float().cpu() - expected.float().cpu()).abs() * std * 255.0
    return float(grey.max()), float(grey.mean())


def assert_input_close(actual, expected, spec) -> None:
    """``actual`` is within the preprocessing tolerance of ``expected`` (e.g. ``reference_input``)."""
    assert actual.shape == expected.shape, (tuple(actual.shape), tuple(expected.shape))
    worst, mean = input_difference(actual, expected, spec)
    assert worst <= PREPROCESS_MAX_GREY + 1e-3 and mean <= PREPROCESS_MEAN_GREY, (
        f"{spec.name}: input differs from the reference by up to {worst:.2f} grey levels "
        f"(mean {mean:.4f}); allowed {PREPROCESS_MAX_GREY} (mean {PREPROCESS_MEAN_GREY})"
    )


# A feature difference the tolerance allows: cosine of a small random-weight model's features.
PREPROCESS_MIN_COSINE = 0.9999


def compare_to_reference(patches, spec, device: str = "cpu", in_float: bool | None = None) -> dict:
    """fusecpath's input for ``patches`` on ``device`` against ``reference_input``: max and mean
    absolute difference (grey levels) and, for a seeded random-weight conv net, the smallest cosine
    and the largest absolute difference of the features (relative to their largest magnitude)."""
    import torch

    from fusecpath.encoders.preprocess import preprocess

    expected = reference_input(patches, spec)
    actual = preprocess(patches.to(device), spec, in_float=in_float).cpu()
    worst, mean = input_difference(actual, expected, spec)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 16, stride=16),
        torch.nn.GELU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    )
    with torch.no_grad():
        a, b = model(actual), model(expected)
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=1).min()
    return {
        "input_max_grey": worst,
        "input_mean_grey": mean,
        "feature_min_cosine": float(cosine),
        "feature_max_rel_diff": float((a - b).abs().max() / b.abs().max()),
    }


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
