"""Multi-view clustering benchmark: fusecpath's co-trained spectral clustering vs mvlearn's.

Same features for both (``fusecpath.synthetic.blobs.multiview_blobs``: 3 views, 50 true clusters, each
view blind to a different 30% of the cluster pairs), the settings FuseCPath's official code uses
(n_clusters=50, affinity="nearest_neighbors"). Prints time, ARI between the two, ARI to the generator's
truth and silhouette (on the standardised concatenated views), then 50,000 patches for ours alone
(mvlearn is dense: N x N matrices and an N^3 inverse).

mvlearn is not a fusecpath dependency (its pinned matplotlib does not build here). Install it in any
other environment (``python3 -m venv /work/mvvenv && /work/mvvenv/bin/pip install numpy scipy
scikit-learn joblib && /work/mvvenv/bin/pip install --no-deps mvlearn``) and pass its interpreter with
``--mvlearn-python`` (or MVLEARN_PYTHON); without one, mvlearn's rows are skipped with a message.

    python benchmarks/cluster.py [--sizes 2000,8000] [--large 50000] [--mvlearn-python /work/mvvenv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, silhouette_score

from fusecpath.fusion import multiview_cluster
from fusecpath.synthetic.blobs import multiview_blobs

N_CLUSTERS = 50
_MVLEARN = """
import sys, time, numpy as np
from mvlearn.cluster import MultiviewSpectralClustering
data = np.load(sys.argv[1])
views = [data[k] for k in sorted(data.files)]
start = time.perf_counter()
labels = MultiviewSpectralClustering(n_clusters=int(sys.argv[3]), affinity="nearest_neighbors",
                                     random_state=0).fit_predict(views)
np.save(sys.argv[2], np.asarray(labels))
print(time.perf_counter() - start)
"""


def mvlearn_python(explicit: str | None) -> str | None:
    """An interpreter that imports mvlearn: --mvlearn-python, MVLEARN_PYTHON, or this one."""
    for candidate in (explicit, os.environ.get("MVLEARN_PYTHON"), sys.executable):
        if (
            candidate
            and subprocess.run([candidate, "-c", "import mvlearn"], capture_output=True).returncode == 0
        ):
            return candidate
    return None


def run_mvlearn(python: str, views: list[np.ndarray]) -> tuple[np.ndarray, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "views.npz", Path(tmp) / "labels.npy"
        np.savez(data, **{f"v{i}": v for i, v in enumerate(views)})
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        done = subprocess.run(
            [python, "-c", _MVLEARN, str(data), str(out), str(N_CLUSTERS)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return np.load(out), float(done.stdout.strip().splitlines()[-1])


def silhouette(views: list[np.ndarray], labels: np.ndarray) -> float:
    x = np.hstack([(v - v.mean(0)) / (v.std(0) + 1e-9) for v in views])
    return float(silhouette_score(x, labels, sample_size=min(len(x), 4000), random_state=0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="2000,8000", help="patch counts compared with mvlearn")
    parser.add_argument("--large", type=int, default=50000, help="patch count for ours alone (0: skip)")
    parser.add_argument("--mvlearn-python", default=None, help="an interpreter that can import mvlearn")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    python = mvlearn_python(args.mvlearn_python)
    if python is None:
        print("mvlearn is not importable (pass --mvlearn-python or set MVLEARN_PYTHON): its rows are skipped")
    rows = []
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([args.large] if args.large else [])
    header = f"{'patches':>8} {'method':>10} {'seconds':>9} {'speed-up':>9} {'ARI truth':>10} {'ARI ours-mv':>12} {'silhouette':>11}"
    print(header)
    for n in sizes:
        views, truth = multiview_blobs(n, N_CLUSTERS, seed=1)
        start = time.perf_counter()
        ours = multiview_cluster(views, N_CLUSTERS, seed=0)
        t_ours = time.perf_counter() - start
        row = {
            "patches": n,
            "ours_seconds": t_ours,
            "ours_ari_truth": adjusted_rand_score(truth, ours),
            "ours_silhouette": silhouette(views, ours),
        }
        if python and n != args.large:
            mv, t_mv = run_mvlearn(python, views)
            row.update(
                mvlearn_seconds=t_mv,
                mvlearn_ari_truth=adjusted_rand_score(truth, mv),
                mvlearn_silhouette=silhouette(views, mv),
                ari_between=adjusted_rand_score(ours, mv),
                speedup=t_mv / t_ours,
            )
        rows.append(row)
        between = f"{row['ari_between']:.3f}" if "ari_between" in row else "-"
        speed = f"{row['speedup']:.0f}x" if "speedup" in row else "-"
        print(
            f"{n:>8} {'fusecpath':>10} {t_ours:>9.2f} {speed:>9} {row['ours_ari_truth']:>10.3f} {between:>12} "
            f"{row['ours_silhouette']:>11.3f}",
            flush=True,
        )
        if "mvlearn_seconds" in row:
            print(
                f"{n:>8} {'mvlearn':>10} {row['mvlearn_seconds']:>9.2f} {'1x':>9} {row['mvlearn_ari_truth']:>10.3f} "
                f"{between:>12} {row['mvlearn_silhouette']:>11.3f}",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
