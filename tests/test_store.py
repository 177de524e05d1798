"""The HDF5 feature store: layout, atomic writes, locks, and TRIDENT/CLAM files read as they are."""

from __future__ import annotations

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from fusecpath.features.store import (
    FORMAT,
    SlideLockedError,
    StoreError,
    feature_path,
    list_store,
    lock_path,
    open_features,
    slide_lock,
    updating,
    write_arrays,
)


def _write_slide(path, n=6, dims=(4, 3)):
    with updating(path) as f:
        f.attrs.update(format=FORMAT, version=1, slide_id=path.stem)
        coords = f.create_dataset("coords", data=np.arange(2 * n, dtype=np.int64).reshape(n, 2) * 256)
        coords.attrs.update(mpp=0.5, read_px=256, patch_size_level0=256)
        for i, dim in enumerate(dims):
            f.create_dataset(f"patch/fm{i}", data=np.full((n, dim), i, np.float32)).attrs["fingerprint"] = (
                f"fp{i}"
            )
        f.create_dataset("slide/mean-fm0", data=np.zeros(dims[0], np.float32)).attrs["fingerprint"] = "s0"


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") or p.suffix == ".lock")


def test_roundtrip(tmp_path):
    path = feature_path(tmp_path, "slide-1")
    assert path == tmp_path / "slide-1.h5"
    _write_slide(path)
    sf = open_features(path)
    assert sf.slide_id == "slide-1" and sf.format == "fusecpath" and len(sf) == 6
    assert sf.coords.dtype == np.int64 and sf.coords.shape == (6, 2)
    assert sf.attrs["mpp"] == 0.5 and sf.attrs["read_px"] == 256
    assert sf.patch_fms() == ["fm0", "fm1"] and sf.slide_fms() == ["mean-fm0"]
    assert sf.patch("fm1").dtype == np.float32 and sf.patch("fm1").shape == (6, 3)
    assert np.all(sf.patch("fm1") == 1) and sf.slide("mean-fm0").shape == (4,)
    assert sf.fingerprint("fm0") == "fp0" and sf.fingerprint("absent") is None
    assert sf.has("patch/fm0") and not sf.has("clusters/k")
    with pytest.raises(StoreError, match="no patch features of 'absent'"):
        sf.patch("absent")
    assert _leftovers(tmp_path) == []


def test_write_arrays_adds_and_replaces_atomically(tmp_path):
    path = tmp_path / "s.h5"
    _write_slide(path)
    write_arrays(path, {"clusters/k2": np.array([0, 1, 0, 1, 0, 1])}, attrs={"clusters/k2": {"k": 2}})
    write_arrays(path, {"clusters/k2": np.array([1, 1, 0, 0, 1, 1]), "clusters/k3": np.arange(6) % 3})
    sf = open_features(path)
    assert sf.array("clusters/k2").tolist() == [1, 1, 0, 0, 1, 1]
    assert sf.array("clusters/k3").tolist() == [0, 1, 2, 0, 1, 2]
    assert np.all(sf.patch("fm0") == 0) and sf.fingerprint("fm1") == "fp1"  # the rest is kept
    with pytest.raises(StoreError, match="coords"):
        write_arrays(path, {"coords": np.zeros((1, 2))})
    with pytest.raises(StoreError, match="no such feature file"):
        write_arrays(tmp_path / "missing.h5", {"x": np.zeros(1)})
    assert _leftovers(tmp_path) == []


def test_failed_update_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "s.h5"
    _write_slide(path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError), updating(path, drop=["patch/fm0"]) as f:
        f.create_dataset("patch/new", data=np.zeros((6, 2)))
        raise RuntimeError("killed half way")
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_lock_keeps_a_second_writer_off(tmp_path):
    path = tmp_path / "s.h5"
    with slide_lock(path):
        assert lock_path(path).read_text().split()[0] == str(os.getpid())
        with pytest.raises(SlideLockedError, match=rf"being written by process {os.getpid()}"):
            with slide_lock(path):
                pass
    assert not lock_path(path).exists()


def test_dead_process_lock_and_its_temporary_file_are_cleared(tmp_path):
    path = tmp_path / "s.h5"
    _write_slide(path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    lock_path(path).write_text(f"{dead.pid} {socket.gethostname()}\n")
    orphan = tmp_path / f".s.h5.{dead.pid}.tmp"
    orphan.write_bytes(b"half an hdf5 file")
    write_arrays(path, {"extra": np.ones(3)}, wait=0)
    assert open_features(path).array("extra").tolist() == [1, 1, 1]
    assert _leftovers(tmp_path) == []


def test_trident_and_clam_files_are_read_as_they_are(tmp_path):
    trident = tmp_path / "20x_256px_0px_overlap" / "features_uni_v1"
    trident.mkdir(parents=True)
    with h5py.File(trident / "TCGA-AA-0001.h5", "w") as f:
        f["features"] = np.random.default_rng(0).normal(size=(5, 1024)).astype(np.float32)
        coords = f.create_dataset("coords", data=np.arange(10, dtype=np.int32).reshape(5, 2))
        coords.attrs.update(
            patch_size=256,
            patch_size_level0=512,
            level0_magnification=40,
            target_magnification=20,
            overlap=0,
            name="TCGA-AA-0001",
        )
    sf = open_features(trident / "TCGA-AA-0001.h5")
    assert sf.format == "trident" and sf.patch_fms() == ["uni_v1"]
    assert sf.patch("uni_v1").shape == (5, 1024) and sf.coords.dtype == np.int64
    assert sf.attrs["patch_size_level0"] == 512 and sf.slide_id == "TCGA-AA-0001"
    assert sf.fingerprint("uni_v1") is None

    clam = tmp_path / "clam"
    clam.mkdir()
    with h5py.File(clam / "slide_7.h5", "w") as f:
        f["features"] = np.ones((3, 1, 8), np.float32).reshape(
            1, 3, 8
        )  # some CLAM versions keep a batch axis
        f.create_dataset("coords", data=np.zeros((3, 2), np.int64)).attrs.update(
            patch_level=0, patch_size=256
        )
        f["features"].attrs["encoder"] = "resnet50_trunc"
    sf = open_features(clam / "slide_7.h5")
    assert sf.format == "clam" and sf.patch_fms() == ["resnet50_trunc"]
    assert sf.patch("resnet50_trunc").shape == (3, 8)

    slide_level = tmp_path / "slide_features_titan"
    slide_level.mkdir()
    with h5py.File(slide_level / "TCGA-AA-0001.h5", "w") as f:
        f["features"] = np.ones(768, np.float32)
    assert open_features(slide_level / "TCGA-AA-0001.h5").slide("titan").shape == (768,)


def test_list_store(tmp_path):
    _write_slide(tmp_path / "a.h5")
    write_arrays(tmp_path / "a.h5", {"clusters/k2": np.zeros(6, np.int64)})
    (tmp_path / "broken.h5").write_bytes(b"not hdf5 at all")
    (tmp_path / "notes.txt").write_text("ignored")
    rows = {row["slide_id"]: row for row in list_store(tmp_path)}
    assert set(rows) == {"a", "broken"}
    a = rows["a"]
    assert a["format"] == "fusecpath" and a["n_patches"] == 6 and a["error"] is None
    assert a["patch_fms"] == {
        "fm0": {"dim": 4, "fingerprint": "fp0"},
        "fm1": {"dim": 3, "fingerprint": "fp1"},
    }
    assert a["slide_fms"] == {"mean-fm0": {"dim": 4, "fingerprint": "s0"}} and a["other"] == ["clusters/k2"]
    assert "not a readable HDF5 file" in rows["broken"]["error"] and "\n" not in rows["broken"]["error"]
    with pytest.raises(StoreError):
        list_store(tmp_path / "nowhere")
