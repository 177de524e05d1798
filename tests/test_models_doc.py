"""docs/models.md is generated from the catalogue (`make catalogue`) and must be current."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusecpath.catalogue import CatalogueModel, load_catalogue
from fusecpath.catalogue import docs as models_docs

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_models_md_is_current():
    intro = (DOCS / "models.intro.md").read_text(encoding="utf-8")
    notes = (DOCS / "models.notes.md").read_text(encoding="utf-8")
    expected = models_docs.render(load_catalogue(), intro, notes)
    assert (DOCS / "models.md").read_text(encoding="utf-8") == expected, "run `make catalogue`"


def test_every_catalogued_model_has_a_row_with_its_facts():
    text = (DOCS / "models.md").read_text(encoding="utf-8")
    rows = {line.split(" | ")[0].strip("| `"): line for line in text.splitlines() if line.startswith("| `")}
    for model in load_catalogue():
        if model.distribution in models_docs.EXCLUDED:
            assert model.name not in rows
            continue
        row = rows[model.name]
        assert f"| {model.embed_dim} |" in row and f"`{model.distribution}`" in row
        assert ("| yes |" if model.gated else "| no |") in row


def test_notes_for_an_unknown_plugin_are_refused():
    with pytest.raises(ValueError, match="names no catalogued plugin"):
        models_docs.check_notes(
            "### Gone — `fusecpath-plugin-gone`\n\n- a note\n", {"fusecpath-plugin-paige"}
        )


def test_mean_baselines_get_their_own_table():
    model = CatalogueModel(
        "fusecpath", "", "mean-uni", "slide", 1024, "CC-BY-NC-ND-4.0", True, "builtin", "uni"
    )
    text = models_docs.render([model], "# Models\n")
    assert "### Mean-pooling slide baselines" in text and "### Slide encoders" not in text
    assert "features of `uni`" in text
