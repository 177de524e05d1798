"""Scale-out: extraction through a local Ray cluster, lost workers, and --shard for job arrays."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from fusecpath.errors import FusecpathError
from fusecpath.shards import parse_shard, take_shard

FMS = "hed-stain,mean-hed-stain"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    from fusecpath.synthetic.slides import make_cohort

    out = tmp_path_factory.mktemp("scale-cohort")
    make_cohort(out, 4, seed=3)
    return out


@pytest.fixture(scope="module")
def local_store(cohort, tmp_path_factory) -> Path:
    """The cohort extracted by one ordinary local run: what every other way must reproduce."""
    out = tmp_path_factory.mktemp("scale-local")
    result = run_extract(cohort, out)
    assert result.returncode == 0, result.stderr
    return out


def run_extract(cohort: Path, out: Path, *extra: str, wait: bool = True):
    cmd = [
        sys.executable,
        "-m",
        "fusecpath",
        "extract",
        str(cohort),
        "--fms",
        FMS,
        "--out",
        str(out),
        "--json",
        *extra,
    ]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def store_contents(directory: Path) -> dict[str, dict[str, np.ndarray]]:
    def datasets(f: h5py.File) -> dict[str, np.ndarray]:
        names: list[str] = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        return {name: f[name][()] for name in names}

    contents = {}
    for path in sorted(directory.glob("*.h5")):
        with h5py.File(path, "r") as f:
            contents[path.stem] = datasets(f)
    return contents


def assert_same_store(a: Path, b: Path) -> None:
    left, right = store_contents(a), store_contents(b)
    assert left.keys() == right.keys() and left
    for slide in left:
        assert left[slide].keys() == right[slide].keys(), slide
        assert np.array_equal(left[slide]["coords"], right[slide]["coords"]), slide
        for name, value in left[slide].items():
            # Equal up to float rounding. hed-stain's histograms and quantiles are step functions of
            # the pixels: a CI run once moved 2 of a patch's 16,384 pixels across a bin edge between
            # two processes on one machine (|diff| 1.2e-4), so the bound is 16 pixels' worth, far
            # below what a wrong patch, order or geometry changes (> 1e-2).
            np.testing.assert_allclose(
                value, right[slide][name], rtol=1e-5, atol=1e-3, err_msg=f"{slide} {name}"
            )


def test_shard_split_is_disjoint_and_complete():
    paths = [Path(f"s{i:02d}.svs") for i in (5, 3, 9, 1, 7, 2, 8)]
    shards = [take_shard(paths, f"{i}/3") for i in range(3)]
    assert sorted(p for s in shards for p in s) == sorted(paths)
    assert [len(s) for s in shards] == [3, 2, 2]
    assert take_shard(list(reversed(paths)), "1/3") == shards[1], "independent of the input order"
    assert take_shard(paths, None) == paths
    for bad in ("3/3", "1", "a/b", "0/0"):
        with pytest.raises(FusecpathError, match="--shard"):
            parse_shard(bad)


def test_shards_cover_the_cohort_like_one_run(cohort, local_store, tmp_path):
    for index in range(2):
        result = run_extract(cohort, tmp_path / "sharded", "--shard", f"{index}/2")
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)["written"]) == 2
    again = json.loads(run_extract(cohort, tmp_path / "sharded", "--shard", "1/2").stdout)
    assert again["written"] == [] and len(again["skipped"]) == 2
    assert_same_store(tmp_path / "sharded", local_store)


ray = pytest.importorskip("ray", reason="Ray is the optional extra fusecpath[ray]; make installs it")


def _worker_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "ray::SlideWorker"], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def test_ray_backend_matches_local_and_resumes_after_a_lost_worker(cohort, local_store, tmp_path):
    # Kill a worker as soon as the first slide is stored; the run goes on with a new worker.
    proc = run_extract(cohort, tmp_path / "ray", "--backend", "ray", "--ray-workers", "2", wait=False)
    deadline = time.monotonic() + 300
    killed = False
    while proc.poll() is None and time.monotonic() < deadline:
        if not killed and any((tmp_path / "ray").glob("*.h5")) and (pids := _worker_pids()):
            os.kill(pids[0], signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=300)
    first = json.loads(stdout)
    assert killed, "no worker to kill: the run ended too fast"
    done_before = {Path(p).stem: Path(p).stat().st_mtime_ns for p in first["written"]}
    lost = [f["error"] for f in first["failures"]]
    assert all("Ray worker" in message and "re-run" in message for message in lost), stderr
    assert len(done_before) + len(lost) == 4 and proc.returncode == (1 if lost else 0)

    rerun = run_extract(cohort, tmp_path / "ray", "--backend", "ray", "--ray-workers", "2")
    assert rerun.returncode == 0, rerun.stderr
    second = json.loads(rerun.stdout)
    skipped, written = ({Path(p).stem for p in second[k]} for k in ("skipped", "written"))
    assert set(done_before) <= skipped, "finished slides are not redone"
    # a lost slide is redone unless its worker died after renaming the finished file into place
    lost_ids = {Path(f["slide"]).stem for f in first["failures"]}
    assert written <= lost_ids and len(skipped | written) == 4
    assert not list((tmp_path / "ray").glob(".*")), "the killed writer's temporary file is cleared"
    for path in (tmp_path / "ray").glob("*.h5"):
        if path.stem in done_before:
            assert path.stat().st_mtime_ns == done_before[path.stem]
    assert_same_store(tmp_path / "ray", local_store)
