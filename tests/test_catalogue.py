"""The zoo catalogue in fusecpath/catalogue/ equals what the installed first-party plugins really register."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fusecpath.catalogue import MODEL_FIELDS, entries_from_registry, load_catalogue
from fusecpath.plugins import get_registry


def test_catalogue_equals_registrations():
    catalogue: dict[str, list[dict]] = {}
    for model in load_catalogue():
        catalogue.setdefault(model.distribution, []).append({k: getattr(model, k) for k in MODEL_FIELDS})
    registered = {
        dist: models
        for dist, models in entries_from_registry(get_registry()).items()
        if dist == "fusecpath" or dist.startswith("fusecpath-plugin-")
    }
    assert set(catalogue) == set(registered), "run `make catalogue` after changing a plugin"
    for dist, models in registered.items():
        by_name = lambda rows: sorted(rows, key=lambda r: r["name"])  # noqa: E731
        assert by_name(catalogue[dist]) == by_name(models), f"{dist}: run `make catalogue`"


def test_every_first_party_plugin_dir_has_a_catalogue_file():
    plugins = Path(__file__).resolve().parent.parent / "plugins"
    dists = {
        line.split("=", 1)[1].strip().strip('"')
        for pyproject in plugins.glob("*/pyproject.toml")
        for line in pyproject.read_text().splitlines()
        if line.startswith("name = ")
    }
    assert dists <= {m.distribution for m in load_catalogue()}


def test_list_all_shows_uninstalled_models_with_install_line(tmp_path):
    """With plugins switched off, catalogue models still show, marked not installed, with pip lines."""
    env_code = (
        "import os; os.environ['FUSECPATH_LOAD_PLUGINS'] = ''\n"
        "from fusecpath.cli import main\n"
        "main(['models', 'list', '--all', '--json'])\n"
    )
    out = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True)
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["hed-stain"]["installed"] is True
    template = rows["template-edge"]
    assert template["installed"] is False
    assert template["install"] == "pip install fusecpath-plugin-template"
