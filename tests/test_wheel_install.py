"""The install path users take: wheels built as `make dist` builds them, then plain
``pip install --find-links DIST fusecpath-plugin-lunit`` into a fresh virtualenv (no editable install, no
source tree on sys.path); the fusecpath packages come only from those wheels, checked file by file.

Third-party dependencies: the core wheel's Requires-Dist is installed from the package index once per
machine into a cache folder (``pip install --target``; torch and its CUDA wheels are ~6 GB, minutes to
unpack), which the fresh venv sees through a .pth line. pip in the fresh venv still resolves every
requirement of the two wheels against what it finds and fetches whatever is missing or too old from the
index; the cache holds no fusecpath package (asserted), and, being built from the wheel's own metadata, it
cannot hide an undeclared dependency the way the dev venv would. ``FUSECPATH_TEST_CACHE`` moves it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from fusecpath.catalogue import tomllib

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "fusecpath-plugin-lunit"
PLUGIN_DIR = ROOT / "plugins" / PLUGIN


def _version(project: Path) -> str:
    return tomllib.loads((project / "pyproject.toml").read_text())["project"]["version"]


def _build(project: Path, out: Path) -> None:
    """What `make dist` runs for one project: an isolated PEP 517 build of the sdist, then the wheel from it."""
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(project)],
        check=True,
        capture_output=True,
        text=True,
    )


def _clean_env(venv_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "FUSECPATH_"))}
    env["PATH"] = f"{venv_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def _requirements(wheel: Path) -> list[str]:
    """The wheel's unconditional Requires-Dist lines (extras left out)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    return sorted(
        line.split(":", 1)[1].strip()
        for line in lines
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    )


def _dependency_cache(requirements: list[str]) -> Path:
    """A folder holding ``requirements`` installed from the index (built once per machine and list)."""
    key = hashlib.sha256(json.dumps([sys.version_info[:2], requirements]).encode()).hexdigest()[:16]
    root = Path(os.environ.get("FUSECPATH_TEST_CACHE") or Path.home() / ".cache" / "fusecpath-tests")
    target = root / f"wheel-deps-{key}"
    if not (target / ".complete").exists():
        partial = root / f".wheel-deps-{key}.{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(partial), *requirements]
        done = subprocess.run(pip, capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, done.stderr[-3000:]
        (partial / ".complete").write_text("\n".join(requirements) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    assert not list(target.glob("fusecpath*")), f"{target} holds a fusecpath package"
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    pytest.importorskip("build", reason="the dev extra's `build` is needed to build wheels")
    dist = tmp_path_factory.mktemp("dist")
    for project in (ROOT, PLUGIN_DIR):
        _build(project, dist)
    (core,) = dist.glob(f"fusecpath-{_version(ROOT)}-*.whl")
    deps = _dependency_cache(_requirements(core))
    env_dir = tmp_path_factory.mktemp("venv") / "fresh"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    (site,) = (env_dir / "lib").glob("python*/site-packages")
    (site / "third_party_deps.pth").write_text(f"{deps}\n")
    work = tmp_path_factory.mktemp(
        "elsewhere"
    )  # cwd outside the repo: nothing of the source tree is importable
    env = _clean_env(env_dir)
    pip = subprocess.run(
        [str(env_dir / "bin" / "pip"), "install", "--find-links", str(dist), PLUGIN],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    installed_now = [line for line in pip.stdout.splitlines() if line.startswith("Successfully installed")]
    print(installed_now)  # shown with -s: what pip put into the fresh venv
    return dist, env_dir, work, env


def _run(installed, *args: str) -> subprocess.CompletedProcess:
    _, env_dir, work, env = installed
    return subprocess.run(
        [str(env_dir / "bin" / args[0]), *args[1:]],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_core_wheel_carries_the_catalogue(installed):
    dist = installed[0]
    (wheel,) = dist.glob(f"fusecpath-{_version(ROOT)}-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if n.startswith("fusecpath/catalogue/") and n.endswith(".toml")}
    assert shipped == {p.name for p in (ROOT / "fusecpath" / "catalogue").glob("*.toml")}
    assert not [n for n in names if n.startswith(("tests/", "plugins/"))]
    assert {p.name.split("-")[0] for p in dist.glob("*.tar.gz")} == {"fusecpath", "fusecpath_plugin_lunit"}


def test_fusecpath_came_from_the_wheels_not_the_source_tree(installed):
    dist, env_dir = installed[0], installed[1]
    probe = _run(
        installed,
        "python",
        "-c",
        "import json, fusecpath, fusecpath_plugin_lunit, importlib.metadata as m, sys;"
        "print(json.dumps([fusecpath.__file__, fusecpath_plugin_lunit.__file__, sys.path,"
        " m.distribution('fusecpath').read_text('RECORD'), m.distribution('fusecpath').read_text('direct_url.json')]))",
    )
    assert probe.returncode == 0, probe.stderr
    core_file, plugin_file, path, record, direct_url = json.loads(probe.stdout)
    site = str(env_dir / "lib")
    assert core_file.startswith(site) and plugin_file.startswith(site)
    assert not [p for p in path if p.startswith(str(ROOT))], path
    assert direct_url is None  # an editable or URL install would leave direct_url.json
    (wheel,) = dist.glob(f"fusecpath-{_version(ROOT)}-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        wheel_record = zf.read(f"fusecpath-{_version(ROOT)}.dist-info/RECORD").decode()
    # the installed files are exactly the built wheel's (same paths, same hashes)
    installed_files = {line.split(",")[0]: line.split(",")[1] for line in record.splitlines() if line}
    for line in wheel_record.splitlines():
        name, digest = line.split(",")[:2]
        if digest:
            assert installed_files.get(name) == digest, name


def test_models_list_and_plugins_show_the_plugin(installed):
    models = _run(installed, "fusecpath", "models", "list", "--json")
    assert models.returncode == 0, models.stderr
    rows = json.loads(models.stdout)
    catalogue = tomllib.loads((ROOT / "fusecpath" / "catalogue" / f"{PLUGIN}.toml").read_text())
    expected = {m["name"] for m in catalogue["models"]}
    from_plugin = {r["name"] for r in rows if r["plugin"] not in ("fusecpath", "builtin")}
    assert expected <= {r["name"] for r in rows}
    assert from_plugin <= expected | {f"mean-{n}" for n in expected}  # nothing of plugins not installed
    assert "uni" not in {r["name"] for r in rows}  # mahmoodlab is not installed
    plugins = _run(installed, "fusecpath", "plugins", "--json")
    assert plugins.returncode == 0, plugins.stderr
    mine = [p for p in json.loads(plugins.stdout) if p["distribution"] == PLUGIN]
    assert len(mine) == 1 and mine[0]["version"] == _version(PLUGIN_DIR), plugins.stdout
    # the plugin's own registrations; its mean-<fm> slide baselines are generated by the core
    assert {n for n in expected if not n.startswith("mean-")} <= set(mine[0]["models"])
