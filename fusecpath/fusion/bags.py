"""Bags: N_K patches from each of K clusters (K x N_K patches a bag), N_R bags a slide.

Each cluster's patches are shuffled once (per slide and seed) and dealt out to the bags in turn, so bags
are disjoint while a cluster has patches left; a small cluster is dealt again in a new order (repetition).
A slide with fewer than K clusters fills the missing cluster slots by reusing its clusters in turn, so
every bag has the same (K, N_K) shape.

Dealing N_K patches to every cluster slot evens out the slide's composition inside a bag: a cluster of
2 % of the patches fills as many slots as one of 50 %. ``slot_shares`` gives the share of the slide each
slot stands for, so a model can weigh the slots back (the fused model's ``cluster_prior``).
"""

from __future__ import annotations

import zlib

import numpy as np

N_PER_CLUSTER = 10  # N_K
N_BAGS = 50  # N_R


def make_bags(
    labels: np.ndarray,
    n_clusters: int,
    n_bags: int = N_BAGS,
    per_cluster: int = N_PER_CLUSTER,
    seed: int = 0,
    key: str = "",
) -> np.ndarray:
    """(n_bags, n_clusters, per_cluster) patch indices; deterministic for (labels, seed, key)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("a slide without patches has no bags")
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    present = np.unique(labels)
    need = n_bags * per_cluster
    out = np.empty((n_bags, n_clusters, per_cluster), dtype=np.int64)
    for slot in range(n_clusters):
        members = np.flatnonzero(labels == present[slot % len(present)])
        rounds = -(-need // len(members))
        dealt = np.concatenate([rng.permutation(members) for _ in range(rounds)])[:need]
        out[:, slot, :] = dealt.reshape(n_bags, per_cluster)
    return out


def slot_shares(labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """(n_clusters,) the share of the slide's patches each bag slot stands for (they sum to 1): a
    cluster's share of the patches, split evenly among the slots ``make_bags`` deals it to."""
    present, sizes = np.unique(np.asarray(labels), return_counts=True)
    if present.size == 0:
        raise ValueError("a slide without patches has no bags")
    slot_cluster = np.arange(n_clusters) % len(present)
    slots_per_cluster = np.bincount(slot_cluster, minlength=len(present))
    return (sizes / sizes.sum() / slots_per_cluster)[slot_cluster]
