"""Multi-view clustering: agreement with the truth, small slides, determinism, and bags."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from fusecpath.fusion import make_bags, multiview_cluster
from fusecpath.fusion.bags import slot_shares
from fusecpath.fusion.cluster import knn_graph
from fusecpath.synthetic.blobs import multiview_blobs


def test_views_together_beat_each_view_alone():
    views, truth = multiview_blobs(1200, n_clusters=12, dims=(16, 24, 32), seed=3)
    labels = multiview_cluster(views, n_clusters=12, seed=0)
    fused = adjusted_rand_score(truth, labels)
    singles = [adjusted_rand_score(truth, multiview_cluster([v], n_clusters=12, seed=0)) for v in views]
    assert fused > 0.9
    assert fused > max(singles) + 0.05


def test_deterministic_for_a_seed_and_labels_in_range():
    views, _ = multiview_blobs(400, n_clusters=8, dims=(8, 8), seed=1)
    a = multiview_cluster(views, 8, seed=5)
    assert np.array_equal(a, multiview_cluster(views, 8, seed=5))
    assert a.shape == (400,) and a.min() >= 0 and a.max() < 8


def test_fewer_patches_than_clusters():
    views = [np.random.default_rng(0).standard_normal((7, 4)).astype(np.float32)] * 2
    assert list(multiview_cluster(views, n_clusters=50)) == list(range(7))
    assert len(np.unique(multiview_cluster([v[:1] for v in views], n_clusters=50))) == 1


def test_rejects_views_of_different_lengths():
    with pytest.raises(ValueError, match="share rows"):
        multiview_cluster([np.zeros((5, 2)), np.zeros((6, 2))], 2)


def test_approximate_knn_finds_most_exact_neighbours(monkeypatch):
    import torch

    from fusecpath.fusion import cluster

    x = torch.as_tensor(multiview_blobs(3000, 20, dims=(16,), seed=2)[0][0])
    exact = knn_graph(x, 10).to_dense() > 0
    monkeypatch.setattr(cluster, "EXACT_KNN_MAX", 100)
    approx = knn_graph(x, 10).to_dense() > 0
    recall = (exact & approx).sum() / exact.sum()
    assert recall > 0.95


def test_bags_are_disjoint_within_a_cluster_and_deterministic():
    labels = np.repeat(np.arange(4), [40, 40, 3, 1])
    bags = make_bags(labels, n_clusters=4, n_bags=4, per_cluster=10, seed=0, key="s1")
    assert bags.shape == (4, 4, 10)
    for slot in range(4):
        assert set(labels[bags[:, slot].ravel()]) == {slot}
    big = bags[:, 0].ravel()
    assert len(np.unique(big)) == len(big)  # 40 patches dealt to 4 bags of 10: disjoint
    assert np.array_equal(bags, make_bags(labels, 4, 4, 10, seed=0, key="s1"))
    assert not np.array_equal(bags, make_bags(labels, 4, 4, 10, seed=1, key="s1"))


def test_bags_fill_missing_clusters():
    labels = np.array([0, 0, 1, 1, 1])
    bags = make_bags(labels, n_clusters=5, n_bags=2, per_cluster=3)
    assert bags.shape == (2, 5, 3)
    assert set(bags.ravel()) == set(range(5))


def test_slot_shares_split_a_cluster_among_the_slots_it_fills():
    labels = np.array([7] * 6 + [3] * 2 + [5] * 2)  # clusters 3, 5, 7 fill slots 0, 1, 2, 3 in turn
    shares = slot_shares(labels, n_clusters=4)
    np.testing.assert_allclose(shares, [0.1, 0.2, 0.6, 0.1])  # cluster 3 (0.2) fills slots 0 and 3
    bags = make_bags(labels, n_clusters=4, n_bags=1, per_cluster=2)
    assert [set(labels[bags[0, slot]]) for slot in range(4)] == [{3}, {5}, {7}, {3}]
    assert shares.sum() == pytest.approx(1.0)
