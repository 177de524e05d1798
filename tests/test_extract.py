"""One-pass multi-FM extraction on the real slide and synthetic SVS/TIFF slides; resumability; bad input."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from fusecpath.api import get_spec
from fusecpath.features.extract import extract
from fusecpath.features.store import open_features
from fusecpath.synthetic.slides import GLASS, patch_truth

FMS = ["hed-stain", "gabor-texture"]


def _files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def _contents(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
        )
    return out


@pytest.fixture(scope="module")
def cohort_features(small_cohort, real_slide, tmp_path_factory):
    out = tmp_path_factory.mktemp("features")
    result = extract([real_slide, small_cohort], FMS + ["mean-hed-stain"], out, progress=False)
    return out, result


def test_extracts_real_and_synthetic_slides(cohort_features, small_cohort):
    out, result = cohort_features
    assert result.failures == [] and result.skipped == []
    assert sorted(p.name for p in result.written) == [
        "SYN-000-A.h5",
        "SYN-001-A.h5",
        "SYN-002-A.h5",
        "SYN-003-A.h5",
        "cmu_small_region.h5",
    ]
    for path in result.written:
        sf = open_features(path)
        n = len(sf.coords)
        assert n > 20 and sf.patch_fms() == sorted(FMS) and sf.slide_fms() == ["mean-hed-stain"]
        for fm in FMS:
            features = sf.patch(fm)
            assert features.shape == (n, get_spec(fm).embed_dim) and np.isfinite(features).all()
            assert sf.fingerprint(fm) == get_spec(fm).fingerprint()
        assert np.allclose(sf.slide("mean-hed-stain"), sf.patch("hed-stain").mean(0), atol=1e-5)
        assert sf.attrs["mpp"] == 0.5 and sf.attrs["read_px"] == 256
        assert sf.attrs["patch_size_level0_exact"] == pytest.approx(128.0 / sf.attrs["slide_mpp"])
        if sf.slide_id.startswith("SYN"):
            truth = patch_truth(small_cohort, sf.slide_id, sf.coords, sf.attrs["patch_size_level0_exact"])
            assert (truth != GLASS).mean() > 0.9
        assert (out / "tissue" / f"{sf.slide_id}.geojson").exists() and (
            out / "tissue" / f"{sf.slide_id}.png"
        ).exists()
    assert {p.suffix for p in out.iterdir() if p.is_file()} == {".h5"}  # no lock or temporary file left


def test_slides_at_two_mpp_give_comparable_features(cohort_features):
    """SYN-000-A and SYN-003-A (0.5 µm/px) vs SYN-001-A and SYN-002-A (0.25 µm/px), same physical size:
    tiles cover the same physical area, so patch counts and colour statistics agree across resolutions."""
    out, _ = cohort_features
    counts = {p.stem: len(open_features(p).coords) for p in out.glob("SYN-*.h5")}
    assert max(counts.values()) / min(counts.values()) < 1.6
    means = {p.stem: open_features(p).patch("hed-stain")[:, :3].mean(0) for p in out.glob("SYN-*.h5")}
    spread = np.ptp(np.stack(list(means.values())), axis=0)
    assert (spread < 0.35 * np.abs(np.stack(list(means.values()))).mean(0) + 0.02).all()


def test_rerun_skips_and_adds_only_missing_fms(cohort_features, small_cohort, tmp_path):
    out, _ = cohort_features
    work = tmp_path / "features"
    shutil.copytree(out, work)
    before = _contents(work / "SYN-000-A.h5")
    again = extract([small_cohort / "SYN-000-A.svs"], FMS, work, progress=False)
    assert again.skipped == [work / "SYN-000-A.h5"] and again.written == []
    coarse = dataclasses.replace(get_spec("hed-stain"), name="hed-coarse", aliases=(), mpp=1.0, read_px=256)
    added = extract([small_cohort / "SYN-000-A.svs"], [*FMS, coarse], work, progress=False)
    assert added.written == [work / "SYN-000-A.h5"] and added.slides[0]["fms"] == ["hed-coarse"]
    after = _contents(work / "SYN-000-A.h5")
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value)
    sf = open_features(work / "SYN-000-A.h5")
    assert sf.patch("hed-coarse").shape == (len(sf.coords), 32)  # an FM at its own mpp: same N
    attrs = sf.fm_attrs("hed-coarse")
    assert attrs["read_size_level0"] == pytest.approx(512.0) and attrs["read_offset_level0"] == pytest.approx(
        -128.0
    )


def test_features_are_reproducible(cohort_features, real_slide, tmp_path):
    """Same features with two reader workers and another batch size."""
    out, _ = cohort_features
    result = extract([real_slide], FMS, tmp_path, workers=2, batch_size=7, progress=False)
    assert result.failures == []
    for path in result.written:
        first, second = open_features(out / path.name), open_features(path)
        np.testing.assert_array_equal(first.coords, second.coords)
        for fm in FMS:
            np.testing.assert_allclose(first.patch(fm), second.patch(fm), rtol=1e-5, atol=1e-6)


def test_random_cnn_on_the_real_slide(real_slide, tmp_path):
    result = extract([real_slide], ["random-cnn", "hed-stain"], tmp_path, batch_size=16, progress=False)
    sf = open_features(result.written[0])
    assert sf.patch("random-cnn").shape == (len(sf.coords), 512) and np.isfinite(sf.patch("random-cnn")).all()
    assert len(sf.patch("hed-stain")) == len(sf.coords)


def test_bad_input_fails_alone(openslide_fixtures, small_cohort, tmp_path):
    slides = tmp_path / "slides"
    slides.mkdir()
    for name in ("unopenable.tiff", "unreadable.svs", "boxes.png"):
        shutil.copy(openslide_fixtures / name, slides / name)
    (slides / "empty.svs").write_bytes(b"")
    data = (small_cohort / "SYN-000-A.svs").read_bytes()
    (slides / "truncated.svs").write_bytes(data[: len(data) // 2])
    Image.new("RGB", (1200, 900), (243, 243, 246)).save(slides / "glass.jpg")
    shutil.copy(small_cohort / "SYN-003-A.tiff", slides / "good.tiff")
    out = tmp_path / "out"
    result = extract([slides, tmp_path / "missing.svs"], [*FMS, "no-such-fm"], out, progress=False)
    assert [p.name for p in result.written] == ["good.h5"]
    failed = {Path(s).name: m for s, m in result.failures}
    assert set(failed) == {
        "missing.svs",
        "fm:no-such-fm",
        "unopenable.tiff",
        "unreadable.svs",
        "boxes.png",
        "empty.svs",
        "truncated.svs",
        "glass.jpg",
    }
    assert all("\n" not in m and len(m) < 300 for m in failed.values())
    assert "unknown model 'no-such-fm'" in failed["fm:no-such-fm"]
    assert "tiles cannot be decoded" in failed["unreadable.svs"]
    assert (
        "tiles cannot be decoded" in failed["truncated.svs"]
        or "truncated or damaged" in failed["truncated.svs"]
    )
    assert "pass --mpp" in failed["boxes.png"] and "0 bytes" in failed["empty.svs"]
    assert "pass --mpp" in failed["glass.jpg"]
    assert _files(out) == ["good.h5", "tissue/good.geojson", "tissue/good.png"]  # nothing partial


def test_glass_only_slide_reports_no_tissue(tmp_path):
    Image.new("RGB", (1200, 900), (243, 243, 246)).save(tmp_path / "glass.png")
    result = extract([tmp_path / "glass.png"], ["hed-stain"], tmp_path / "out", mpp=0.5, progress=False)
    assert len(result.failures) == 1 and "glass.png: no tissue found" in result.failures[0][1]
    assert _files(tmp_path / "out") == []


def test_cli_extract_json_and_exit_code(small_cohort, openslide_fixtures, tmp_path):
    from fusecpath.cli import main

    command = [
        "extract",
        str(small_cohort / "SYN-000-A.svs"),
        str(openslide_fixtures / "unopenable.tiff"),
        "--fms",
        "hed-stain",
        "--out",
        str(tmp_path),
        "--json",
        "--batch-size",
        "16",
    ]
    with pytest.raises(SystemExit) as info:
        main(command)
    assert info.value.code == 1
    ls = subprocess.run(
        [sys.executable, "-m", "fusecpath", "features", "ls", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(ls.stdout)
    assert [r["slide_id"] for r in rows] == ["SYN-000-A"] and list(rows[0]["patch_fms"]) == ["hed-stain"]


def _wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_sigkill_mid_extraction_then_rerun_gives_the_same_files(small_cohort, tmp_path):
    slides = [small_cohort / "SYN-000-A.svs", small_cohort / "SYN-003-A.tiff"]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert extract(slides, ["gabor-texture"], reference, batch_size=4, progress=False).failures == []

    command = [
        sys.executable,
        "-m",
        "fusecpath",
        "extract",
        *map(str, slides),
        "--fms",
        "gabor-texture",
        "--batch-size",
        "4",
        "--json",
        "--out",
        str(killed),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # kill while the second slide is half written: its temporary file exists, the first is done
        assert _wait_for(lambda: killed.exists() and any(killed.glob(".SYN-003-A.h5.*.tmp")))
        os.kill(proc.pid, signal.SIGKILL)  # at once: on an idle machine the slide takes about a second
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "SYN-003-A.h5").exists()  # no half-written feature file in place
    assert (killed / "SYN-003-A.h5.lock").exists()  # the dead process's lock, cleared on re-run
    h5py.File(killed / "SYN-000-A.h5", "r").close()  # the finished slide is a valid file

    rerun = extract(slides, ["gabor-texture"], killed, batch_size=4, progress=False)
    assert [p.name for p in rerun.skipped] == ["SYN-000-A.h5"] and [p.name for p in rerun.written] == [
        "SYN-003-A.h5"
    ]
    assert _files(killed) == _files(reference)  # and no lock or temporary file left
    for name in ("SYN-000-A.h5", "SYN-003-A.h5"):
        got, want = _contents(killed / name), _contents(reference / name)
        assert sorted(got) == sorted(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
