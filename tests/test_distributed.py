"""``torchrun -m fusecpath fuse`` with 2 gloo ranks on CPU gives the single-process run's results."""

from __future__ import annotations

import os
import subprocess
import sys

from fusecpath.synthetic.features import write_feature_store
from fusecpath.training.distributed import Dist

ARGS = [
    "--fms",
    "hed-stain,gabor-texture,mean-hed-stain",
    "--task",
    "classification",
    "--folds",
    "3",
    "--epochs",
    "3",
    "--clusters",
    "4",
    "--per-cluster",
    "4",
    "--bags",
    "4",
    "--hidden",
    "32",
    "--batch-size",
    "8",
]


def test_batch_share_splits_every_tensor_of_a_batch():
    import torch

    bags, teachers = torch.arange(10).view(5, 2), [torch.arange(5)]
    shares = [Dist(rank=r, world=2).batch_share((bags, teachers), list(range(5))) for r in range(2)]
    assert [pos for _, pos in shares] == [[0, 1], [2, 3, 4]]
    assert torch.equal(torch.cat([inputs[0] for inputs, _ in shares]), bags)
    assert torch.equal(shares[1][0][1][0], torch.tensor([2, 3, 4]))
    assert Dist(rank=1, world=2).batch_share(bags[:1], [0])[1] == [0], "a batch too small is not split"
    assert Dist(rank=1, world=3).shard(list(range(7))) == [1, 4]


def test_two_gloo_ranks_equal_one_process(tmp_path):
    labels = write_feature_store(tmp_path / "features")
    common = [*ARGS, "--features", str(tmp_path / "features"), "--labels", str(labels)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [sys.executable, "-m", "fusecpath", "fuse", *common, "--out", str(tmp_path / "one")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "fusecpath",
            "fuse",
            *common,
            "--out",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert two.returncode == 0, two.stderr
    assert "rank 0: seed 0 fold" in two.stderr and "rank 1: seed 0 fold" in two.stderr, "both ranks trained"
    # Each (seed, fold, method) job trains with its own seed on one rank, so the tolerance is zero.
    for name in ("metrics.json", "predictions.csv", "folds.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert (tmp_path / "two" / "model" / "model.safetensors").is_file()
    assert two.stdout.count("cross-validation") == 1, "only rank 0 prints the table"


def test_single_process_is_not_distributed(monkeypatch):
    from fusecpath.training import distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.setup("cpu").enabled and distributed.current().is_main
