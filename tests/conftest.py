"""Shared fixtures. Test data copied into tests/data with SOURCE notes, so a fresh clone tests alone."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def real_slide() -> Path:
    """Real H&E (CC0): a region of OpenSlide's CMU-1.svs, 2220x2967 at 0.499 µm/px."""
    return DATA / "cmu_small_region.svs"


@pytest.fixture(scope="session")
def openslide_fixtures() -> Path:
    """OpenSlide's own test fixtures, including unopenable and unreadable files (see SOURCE.txt)."""
    return DATA / "openslide-fixtures"


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory) -> Path:
    """A small synthetic cohort (fusecpath.synthetic.slides): 4 slides, SVS and TIFF at 0.5 and 0.25 µm/px
    (SYN-000-A.svs 0.5, SYN-001-A.tiff 0.25, SYN-002-A.svs 0.25, SYN-003-A.tiff 0.5), labels.csv,
    ground_truth.json; about 40 tissue patches of 256 px at 0.5 µm/px each."""
    from fusecpath.synthetic.slides import make_cohort

    out = tmp_path_factory.mktemp("small_cohort")
    make_cohort(out, 4, seed=1, mpp=(0.5, 0.25, 0.25, 0.5), width_um=1200.0, height_um=1000.0, workers=1)
    return out
