"""docs/results.md is generated from benchmarks/results/*.json and must be current."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _renderer():
    spec = importlib.util.spec_from_file_location("render_results", ROOT / "benchmarks" / "render_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_page_is_current():
    renderer = _renderer()
    assert (ROOT / "docs" / "results.md").read_text() == renderer.render(), (
        "run python benchmarks/render_results.py"
    )


def test_renders_a_results_file(tmp_path):
    result = {
        "title": "Speed",
        "command": "python benchmarks/x.py --write",
        "when": "2026-12-01",
        "machine": "2 cores",
        "sections": [
            {"heading": "Ratios", "text": "side by side", "columns": ["a", "b"], "rows": [[1.23456, "x|y"]]}
        ],
    }
    (tmp_path / "x.json").write_text(json.dumps(result))
    page = _renderer().render(tmp_path)
    assert "## Speed" in page and "### Ratios" in page
    assert "| 1.235 | x\\|y |" in page
