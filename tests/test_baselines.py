"""The MIL baselines (torchmil ABMIL, TransMIL, CLAM-SB, DSMIL; R²T-MIL) train and predict on a tiny
cohort with the same bags at training and test time; resident memory stays flat across epochs."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from fusecpath.api import fm_records
from fusecpath.fusion.baselines import (
    MIL_MODELS,
    MILMethod,
    MILNet,
    random_bags,
    random_regions,
    transmil_landmarks,
)
from fusecpath.fusion.fuse import FuseOptions, fused_config
from fusecpath.fusion.methods import FuseCPathMethod
from fusecpath.training.data import SlideData
from fusecpath.training.loop import TrainConfig, predict, train
from fusecpath.training.tasks import Task

FMS = ["hed-stain", "gabor-texture"]


def _cohort(n_slides: int = 8, n_patches: int = 40, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Positives carry a shifted block of patches in hed-stain's features."""
    rng = np.random.default_rng(seed)
    cohort, y = {}, np.arange(n_slides) % 2
    for i in range(n_slides):
        n = n_patches + i  # uneven slide sizes
        patch = {fm: rng.standard_normal((n, 32)).astype(np.float32) for fm in FMS}
        patch["hed-stain"][: n // 4, :4] += 3.0 * y[i]
        cohort[f"s{i}"] = SlideData(
            f"s{i}", np.zeros((n, 2), np.int64), patch, clusters=rng.integers(0, 4, n)
        )
    return cohort, y


def test_random_bags_are_disjoint_then_repeat_and_fixed_size():
    bags = random_bags(30, 3, 8, seed=0, key="a")
    assert bags.shape == (3, 8) and len(np.unique(bags)) == 24  # 24 of 30 patches, no repeats
    small = random_bags(5, 2, 8, seed=0, key="a")
    assert small.shape == (2, 8) and set(small.ravel()) == set(range(5))
    regions = random_regions(10, 4, seed=0, key="a")
    assert sorted(np.bincount(regions)) == [2, 2, 3, 3]


@pytest.mark.parametrize("model", MIL_MODELS)
def test_each_mil_baseline_trains_and_predicts(model):
    torch.set_num_threads(1)
    cohort, y = _cohort()
    ids = list(cohort)
    method = MILMethod(cohort, FMS, model, bag_size=16, n_bags=3, hidden=16, seed=0, name=f"{model}-concat")
    task = Task("classification", classes=["neg", "pos"])
    cfg = TrainConfig(epochs=2, optimizer="adamw", lr=1e-3, batch_size=8)
    net, info = train(method, task, ids[:6], y[:6], ids[6:], y[6:], cfg)
    assert len(info["history"]) == 2 and np.isfinite(info["history"][-1]["train_loss"])
    # the same fixed-size bags at test time as in training: (n_bags, n_outputs) raw outputs a slide
    assert method.score(net, "s7", "cpu").shape == (3, 2)
    pred = predict(method, net, task, ids[6:], "cpu")
    assert pred.shape == (2, 2) and np.allclose(pred.sum(1), 1.0, atol=1e-5)
    # a multi-output regression task uses the same models with a replaced head
    reg = Task("regression", targets=["a", "b"])
    net, _ = train(
        method, reg, ids[:6], np.c_[y[:6], -y[:6]].astype(float), ids[6:], np.c_[y[6:], y[6:]], cfg
    )
    assert predict(method, net, reg, ids[6:], "cpu").shape == (2, 2)


def test_r2tmil_uses_random_regions_not_clusters():
    cohort, y = _cohort()
    options = FuseOptions(n_clusters=4, per_cluster=2, n_bags=2, arch={"hidden": 16, "n_heads": 2})
    config = {**fused_config(fm_records(["hed-stain"]), [], options), "slide_fms": []}
    clustered = FuseCPathMethod(cohort, config, n_bags=2, per_cluster=2)
    r2t = FuseCPathMethod(cohort, config, n_bags=2, per_cluster=2, regions="random", name="r2tmil-hed-stain")
    bags, rbags = clustered._bags["s0"], r2t._bags["s0"]
    assert bags.shape == rbags.shape == (2, 4, 2)
    labels = cohort["s0"].clusters
    assert all(len(set(labels[b.ravel()])) == 1 for b in np.moveaxis(bags, 1, 0))  # one cluster a region
    task = Task("classification", classes=["neg", "pos"])
    cfg = TrainConfig(epochs=1, optimizer="adamw", lr=1e-3, batch_size=8)
    net, _ = train(r2t, task, list(cohort)[:6], y[:6], list(cohort)[6:], y[6:], cfg)
    assert predict(r2t, net, task, ["s6"], "cpu").shape == (1, 2)


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads resident size from /proc")
def test_resident_memory_stays_flat_across_epochs():
    """Full-size bags (50 clusters x 10 patches) of a 576-d concatenation: each epoch allocates and
    frees hundreds of MB of differently shaped tensors; the loop hands the freed heap back."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    fms = fm_records(["hed-stain", "gabor-texture", "random-cnn"])
    cohort = {}
    for i in range(6):
        n = int(rng.integers(600, 1200))
        patch = {fm["name"]: rng.standard_normal((n, fm["embed_dim"])).astype(np.float32) for fm in fms}
        cohort[f"s{i}"] = SlideData(
            f"s{i}", np.zeros((n, 2), np.int64), patch, clusters=rng.integers(0, 50, n)
        )
    options = FuseOptions(n_clusters=50, per_cluster=10, n_bags=4, arch={"hidden": 512})
    method = FuseCPathMethod(cohort, fused_config(fms, [], options), n_bags=4, per_cluster=10)
    rss: list[float] = []
    ids, y = list(cohort), np.arange(6) % 2
    cfg = TrainConfig(epochs=4, batch_size=16)
    train(
        method,
        Task("classification", classes=["a", "b"]),
        ids[:4],
        y[:4],
        ids[4:],
        y[4:],
        cfg,
        on_epoch=lambda epoch: rss.append(_rss_mb()),
    )
    assert max(rss[1:]) - rss[0] < 64, f"resident MB by epoch: {[round(r) for r in rss]}"


def test_clam_instance_loss_survives_large_margins():
    """torchmil's SmoothTop1SVM raised a shape error once instance logits grew large (seen at 20 epochs)."""
    from fusecpath.training.tasks import Task

    torch.manual_seed(0)
    net = MILNet("clam", [8, 8], 2, hidden=16, attn_dim=8)
    net.norm.fit(torch.randn(64, 16))
    for classifier in net.mil.inst_classifiers:
        with torch.no_grad():  # torchmil's LazyLinear wraps a Linear; rows far apart: large margins
            classifier.module.weight[0].fill_(50.0)
            classifier.module.weight[1].fill_(-50.0)  # margins far beyond the smooth region
    task = Task("classification", classes=["neg", "pos"])
    bags, y = torch.randn(3, 12, 16), torch.tensor([0, 1, 1])
    loss = net.loss(bags, y, task)
    assert torch.isfinite(loss) and loss.requires_grad


def test_transmil_landmarks_are_at_most_a_quarter_of_the_bag():
    assert transmil_landmarks(512, None) == 256  # torchmil's default
    assert transmil_landmarks(512, 5000) == 256
    assert transmil_landmarks(128, 64) == 16
    assert transmil_landmarks(128, 2) == 1
    net = MILNet("transmil", [8, 8], 2, hidden=16, bag_size=12)
    assert [layer.att_module.n_landmarks for layer in net.mil.layers] == [3, 3]
