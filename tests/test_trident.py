"""TRIDENT job folders: encoder names mapped to the zoo, files read as they are and never changed."""

from __future__ import annotations

import hashlib
import json
import shutil

import h5py
import numpy as np
import pytest

from fusecpath.features.store import StoreError, list_store
from fusecpath.features.trident import (
    TRIDENT_SLIDE_TO_ZOO,
    TRIDENT_TO_ZOO,
    TridentWarning,
    coords_dir,
    is_trident_job,
    open_trident_slide,
    trident_slide_ids,
    zoo_name,
)
from fusecpath.plugins import get_registry
from fusecpath.synthetic.features import make_feature_cohort, simulate_cohort
from fusecpath.synthetic.layouts import write_trident_h5

# Output widths TRIDENT documents for its encoders (its README's tables), at its default settings.
TRIDENT_WIDTHS = {
    "uni_v1": 1024,
    "uni_v2": 1536,
    "conch_v1": 512,
    "conch_v15": 768,
    "virchow": 2560,
    "virchow2": 2560,
    "phikon": 768,
    "phikon_v2": 1024,
    "keep": 768,
    "gigapath": 1536,
    "hoptimus0": 1536,
    "hoptimus1": 1536,
    "h0-mini": 768,
    "musk": 1024,
    "openmidnight": 1536,
    "gpfm": 1024,
    "genbio-pathfm": 4608,
    "kaiko-vits8": 384,
    "kaiko-vits16": 384,
    "kaiko-vitb8": 768,
    "kaiko-vitb16": 768,
    "kaiko-vitl14": 1024,
    "lunit-vits8": 384,
    "hibou_l": 1024,
    "ctranspath": 768,
    "resnet50": 1024,
}
TRIDENT_SLIDE_REQUIRES = {  # TRIDENT's slide_to_patch_encoder_name
    "titan": "conch_v15",
    "prism": "virchow",
    "chief": "ctranspath",
    "gigapath": "gigapath",
    "madeleine": "conch_v1",
    "feather": "conch_v15",
    "feather_uni_v2": "uni_v2",
    "care": "conch_v15",
}
FMS = ("uni", "conch-v1.5", "virchow2")


def test_trident_names_map_to_zoo_models_of_the_same_width():
    registry = get_registry()
    for encoder, width in TRIDENT_WIDTHS.items():
        spec = registry.get(TRIDENT_TO_ZOO[encoder])
        assert spec.level == "patch" and spec.embed_dim == width, encoder
    for encoder, requires in TRIDENT_SLIDE_REQUIRES.items():
        spec = registry.get(TRIDENT_SLIDE_TO_ZOO[encoder])
        assert spec.level == "slide" and spec.requires == TRIDENT_TO_ZOO[requires], encoder
    assert zoo_name("gigapath", "patch") == "prov-gigapath"
    assert zoo_name("gigapath", "slide") == "prov-gigapath-slide"
    assert zoo_name("conch-v1.5") == "conch-v1.5"  # a folder already named the zoo's way
    assert (
        zoo_name("mean-uni_v1", "slide") == "mean-uni"
        and zoo_name("mean-conch_v15", "slide") == "mean-conch-v1.5"
    )
    assert zoo_name("gemma4-e4b") is None and zoo_name("mean-gemma4-e4b", "slide") is None
    assert zoo_name("titan", "patch") is None  # a slide FM is not read as patch features


def _hashes(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    out = tmp_path_factory.mktemp("job")
    make_feature_cohort(out, "teacher", n_slides=5, seed=3, fms=FMS, patches=(12, 20))
    return out


def test_generator_writes_tridents_layout(job):
    run = job / "20x_256px_0px_overlap"
    assert sorted(p.name for p in run.iterdir()) == [
        "features_conch_v15",
        "features_uni_v1",
        "features_virchow2",
        "patches",
        "slide_features_titan",
    ]
    sid = trident_slide_ids(job)[0]
    with h5py.File(run / "features_uni_v1" / f"{sid}.h5", "r") as f:
        features, coords = f["features"], f["coords"]
        assert features.shape[1] == 1024 and features.dtype == np.float32 and features.chunks == (1, 1024)
        assert coords.dtype == np.int64 and coords.chunks == (1, 2) and coords.maxshape == (None, 2)
        assert dict(features.attrs) == {
            "name": sid,
            "savetodir": str(run / "features_uni_v1"),
            "encoder": "uni_v1",
        }
        assert coords.attrs["target_magnification"] == 20 and coords.attrs["patch_size"] == 256
        size0 = coords.attrs["patch_size_level0"]
        assert size0 == 256 * coords.attrs["level0_magnification"] // 20
    with h5py.File(run / "slide_features_titan" / f"{sid}.h5", "r") as f:
        assert f["features"].shape == (768,) and set(f["features"].attrs) == {"name", "savetodir"}
    with h5py.File(run / "patches" / f"{sid}_patches.h5", "r") as f:
        assert list(f) == ["coords"]


def test_reads_a_job_as_zoo_fms_and_leaves_its_files_byte_identical(job):
    before = _hashes(job)
    cohort = simulate_cohort("teacher", n_slides=5, seed=3, fms=FMS, patches=(12, 20))
    assert is_trident_job(job) and is_trident_job(job / "20x_256px_0px_overlap")
    assert trident_slide_ids(job) == [s.slide_id for s in cohort.slides]
    assert trident_slide_ids(job, ["uni-v1", "titan"]) == trident_slide_ids(job)  # zoo names or aliases
    assert trident_slide_ids(job, ["uni", "prism"]) == []
    for expected in cohort.slides:
        sf = open_trident_slide(job, expected.slide_id)
        assert sf.format == "trident" and sf.patch_fms() == sorted(FMS) and sf.slide_fms() == ["titan"]
        np.testing.assert_array_equal(sf.coords, expected.coords)
        for fm in FMS:
            np.testing.assert_array_equal(sf.patch(fm), expected.patch[fm])
            assert sf.fingerprint(fm) is None  # TRIDENT does not record one
        np.testing.assert_array_equal(sf.slide("titan"), expected.slide["titan"])
        assert sf.attrs["mpp"] == 0.5 and sf.attrs["read_px"] == 256
        assert sf.file_of("uni").parent.name == "features_uni_v1"
    rows = list_store(job / "20x_256px_0px_overlap")
    assert [r["format"] for r in rows] == ["trident"] * 5
    assert rows[0]["patch_fms"]["virchow2"] == {
        "dim": 2560,
        "fingerprint": None,
        "trident": "features_virchow2",
    }
    assert _hashes(job) == before
    assert not [p for p in job.rglob("*") if p.name.startswith(".") or p.suffix == ".lock"]


def test_features_ls_cli_lists_a_job(job, capsys):
    from fusecpath.cli import main

    with pytest.raises(SystemExit) as done:
        main(["features", "ls", str(job), "--json"])
    assert done.value.code in (0, None)
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5 and sorted(rows[0]["patch_fms"]) == sorted(FMS)


def _copy(job, tmp_path):
    copy = tmp_path / "job"
    shutil.copytree(job, copy)
    return copy, copy / "20x_256px_0px_overlap"


def test_unknown_encoder_folders_are_skipped_with_one_warning(job, tmp_path):
    copy, run = _copy(job, tmp_path)
    sid = trident_slide_ids(copy)[0]
    shutil.copytree(run / "features_uni_v1", run / "features_gemma4-e4b")
    with pytest.warns(TridentWarning, match="features_gemma4-e4b"):
        sf = open_trident_slide(copy, sid)
    assert sf.patch_fms() == sorted(FMS)
    row = next(r for r in list_store(copy) if r["slide_id"] == sid)
    assert row["other"] == ["features_gemma4-e4b (unmapped)"]


def test_bad_jobs_get_one_clear_line(job, tmp_path):
    copy, run = _copy(job, tmp_path)
    sid = trident_slide_ids(copy)[0]
    with h5py.File(run / "features_uni_v1" / f"{sid}.h5", "r") as f:
        coords = (f["coords"][()], dict(f["coords"].attrs))
        features = f["features"][()]
    write_trident_h5(
        run / "features_uni_v1" / f"{sid}.h5", {"features": (features[:, :512], {}), "coords": coords}
    )
    with pytest.raises(StoreError, match="512-wide uni_v1 features, but the zoo's uni gives 1024"):
        open_trident_slide(copy, sid)
    write_trident_h5(
        run / "features_uni_v1" / f"{sid}.h5", {"features": (features, {}), "coords": (coords[0] + 1, {})}
    )
    with pytest.raises(StoreError, match="coords differ"):
        open_trident_slide(copy, sid)
    (run / "features_uni_v1" / f"{sid}.h5.lock").write_text("{}")
    with pytest.raises(StoreError, match="TRIDENT is still writing it"):
        open_trident_slide(copy, sid)
    shutil.copytree(run, copy / "10x_256px_0px_overlap")
    with pytest.raises(StoreError, match="2 patching runs"):
        coords_dir(copy)
    assert not is_trident_job(tmp_path / "nothing") and not is_trident_job(run / "patches")


def test_store_layout_is_read_by_open_features(tmp_path):
    from fusecpath.features.store import open_features

    labels = make_feature_cohort(
        tmp_path, "redundant", n_slides=3, seed=1, layout="store", fms=("uni", "conch-v1.5"), patches=(10, 12)
    )
    assert labels == tmp_path / "labels.csv"
    cohort = simulate_cohort("redundant", n_slides=3, seed=1, fms=("uni", "conch-v1.5"), patches=(10, 12))
    for s in cohort.slides:
        sf = open_features(tmp_path / "features" / f"{s.slide_id}.h5")
        assert sf.format == "fusecpath" and sf.fingerprint("uni") == get_registry().get("uni").fingerprint()
        np.testing.assert_array_equal(sf.patch("conch-v1.5"), s.patch["conch-v1.5"])


def test_half_precision_features_read_as_float32(job, tmp_path):
    # TRIDENT saves what the encoder returns under autocast: float16 for some encoders
    copy, run = _copy(job, tmp_path)
    sid = trident_slide_ids(copy)[0]
    path = run / "features_uni_v1" / f"{sid}.h5"
    with h5py.File(path, "r") as f:
        features, coords = f["features"][()], (f["coords"][()], dict(f["coords"].attrs))
    write_trident_h5(
        path, {"features": (features.astype(np.float16), {"encoder": "uni_v1"}), "coords": coords}
    )
    got = open_trident_slide(copy, sid).patch("uni")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, features.astype(np.float16).astype(np.float32))
