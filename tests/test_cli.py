"""The command line: fast start, no torch for listing, JSON output, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from fusecpath import __version__


def fusecpath(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "fusecpath", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


NO_TORCH = (
    "import sys\nfrom fusecpath.cli import main\n"
    "try:\n    main({args!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
    "heavy = sorted(m for m in ('torch', 'timm', 'numpy', 'h5py', 'openslide') if m in sys.modules)\n"
    "assert not heavy, heavy\n"
)


@pytest.mark.parametrize(
    "args", [["models", "list"], ["models", "list", "--json", "--all"], ["plugins", "--json"], ["--help"]]
)
def test_listing_imports_no_torch(args):
    result = fusecpath(code=NO_TORCH.format(args=args))
    assert result.returncode == 0, result.stderr


def test_help_is_fast():
    fusecpath("--help")  # warm the file cache
    start = time.perf_counter()
    result = fusecpath("--help")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0 and "models" in result.stdout
    # a whole interpreter start included; the issue asks for well under half a second
    assert elapsed < 1.5, f"--help took {elapsed:.2f}s"


def test_version():
    result = fusecpath("--version")
    assert result.stdout.strip() == f"fusecpath {__version__}"


def test_models_list_json_is_stable():
    rows = json.loads(fusecpath("models", "list", "--json").stdout)
    keys = {
        "name",
        "level",
        "embed_dim",
        "license",
        "gated",
        "source",
        "requires",
        "aliases",
        "plugin",
        "installed",
        "install",
    }
    assert all(set(r) == keys for r in rows)
    by_name = {r["name"]: r for r in rows}
    assert by_name["hed-stain"]["level"] == "patch" and by_name["hed-stain"]["embed_dim"] == 32
    assert by_name["mean-random-cnn"]["requires"] == "random-cnn"
    slide_only = json.loads(fusecpath("models", "list", "--level", "slide", "--json").stdout)
    assert slide_only and all(r["level"] == "slide" for r in slide_only)


def test_models_info():
    info = json.loads(fusecpath("models", "info", "gabor", "--json").stdout)
    assert info["name"] == "gabor-texture" and info["plugin"] == "fusecpath"
    assert info["weights"].startswith("built in") and len(info["fingerprint"]) == 16
    assert info["missing_dependencies"] == []
    text = fusecpath("models", "info", "hed-stain").stdout
    assert "Ruifrok" in text and "Apache-2.0" in text


def test_unknown_model_is_one_line_exit_1():
    result = fusecpath("models", "info", "unii")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("fusecpath: error: unknown model")


def test_usage_error_exit_2():
    assert fusecpath("models", "list", "--level", "tile").returncode == 2
    assert fusecpath("models", "frobnicate").returncode == 2
