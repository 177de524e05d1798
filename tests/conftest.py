"""Shared fixtures. Test data copied into tests/data with SOURCE notes, so a fresh clone tests alone."""

from __future__ import annotations

from pathlib import Path

import pytest

# hf_cache: an offline Hugging Face cache to write repo files into; write_hf_cache(cache_dir, repo_id, files).
from fusecpath.testing import hf_cache, write_hf_cache  # noqa: F401

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def real_slide() -> Path:
    """Real H&E (CC0): a region of OpenSlide's CMU-1.svs, 2220x2967 at 0.499 µm/px."""
    return DATA / "cmu_small_region.svs"


@pytest.fixture(scope="session")
def openslide_fixtures() -> Path:
    """OpenSlide's own test fixtures, including unopenable and unreadable files (see SOURCE.txt)."""
    return DATA / "openslide-fixtures"
