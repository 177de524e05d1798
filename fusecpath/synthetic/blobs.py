"""Multi-view features with a known clustering, for the clustering tests and benchmark.

Each view sees the true clusters only partly: it merges a different random set of cluster pairs
(like a colour-only or texture-only encoder that cannot tell some tissue states apart), so a single
view cannot recover the truth and agreement between views can.
"""

from __future__ import annotations

import numpy as np


def multiview_blobs(
    n: int,
    n_clusters: int = 50,
    dims: tuple[int, ...] = (32, 64, 128),
    seed: int = 0,
    noise: float = 1.0,
    merge_fraction: float = 0.3,
) -> tuple[list[np.ndarray], np.ndarray]:
    """(views, truth): ``len(dims)`` float32 views of ``n`` rows, and the true label of each row."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_clusters, size=n)
    views = []
    for dim in dims:
        owner = np.arange(n_clusters)
        pairs = rng.permutation(n_clusters)[: 2 * int(merge_fraction * n_clusters / 2)].reshape(-1, 2)
        owner[pairs[:, 1]] = pairs[:, 0]  # this view cannot tell the pair apart
        centres = rng.standard_normal((n_clusters, dim)) * 3.0 / np.sqrt(dim) * np.sqrt(8)
        x = centres[owner[truth]] + noise * rng.standard_normal((n, dim)) / np.sqrt(dim) * np.sqrt(8)
        views.append(x.astype(np.float32))
    return views, truth
