"""Multi-view clustering benchmark: fusecpath's co-trained spectral clustering vs mvlearn's.

Same features for both (``fusecpath.synthetic.blobs.multiview_blobs``: 3 views, 50 true clusters, each
view blind to a different 30% of the cluster pairs). mvlearn runs as FuseCPath's official code calls it:
``MultiviewSpectralClustering(n_clusters=50, affinity="nearest_neighbors", random_state=50, n_init=50)``.

- ``--sizes``: time, ARI to truth, ARI between the two and silhouette at 32/64/128-dim views, then
  ``--large`` patches for ours alone (mvlearn is dense: N x N matrices and an N^3 inverse);
- ``--widths 1024,768,2560``: views as wide as real FMs (UNI, CONCH v1.5, Virchow2), ``--patches`` rows;
  ours as shipped (randomised PCA to 64 dims before the kNN graph, 10 k-means restarts), ours without the
  PCA, ours with 50 restarts, and mvlearn with 10 restarts beside the official 50 (the spread that
  restarts alone cause). ARI to truth, ARI to official mvlearn, seconds and the time ratio.

mvlearn is not a fusecpath dependency (its pinned matplotlib does not build here). Install it without its
pins (``pip install --no-deps mvlearn seaborn`` plus pandas, into any environment) and pass that
interpreter with ``--mvlearn-python`` (or MVLEARN_PYTHON); without one, mvlearn's rows are skipped.

    python benchmarks/cluster.py [--sizes 2000,8000] [--large 50000] [--widths 1024,768,2560] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score, silhouette_score

from fusecpath.files import write_atomic
from fusecpath.fusion import multiview_cluster
from fusecpath.synthetic.blobs import multiview_blobs

N_CLUSTERS = 50
RESULTS = Path(__file__).parent / "results" / "cluster.json"
_MVLEARN = """
import sys, time, numpy as np
from mvlearn.cluster import MultiviewSpectralClustering
data = np.load(sys.argv[1])
views = [data[k] for k in sorted(data.files)]
start = time.perf_counter()
labels = MultiviewSpectralClustering(n_clusters=int(sys.argv[3]), affinity="nearest_neighbors",
                                     random_state=int(sys.argv[4]), n_init=int(sys.argv[5])).fit_predict(views)
np.save(sys.argv[2], np.asarray(labels))
print(time.perf_counter() - start)
"""


def mvlearn_python(explicit: str | None) -> str | None:
    """An interpreter that imports mvlearn: --mvlearn-python, MVLEARN_PYTHON, or this one."""
    for candidate in (explicit, os.environ.get("MVLEARN_PYTHON"), sys.executable):
        if (
            candidate
            and subprocess.run([candidate, "-c", "import mvlearn.cluster"], capture_output=True).returncode
            == 0
        ):
            return candidate
    return None


def run_mvlearn(
    python: str, views: list[np.ndarray], random_state: int = N_CLUSTERS, n_init: int = N_CLUSTERS
) -> tuple[np.ndarray, float]:
    """mvlearn's labels and seconds; defaults are the official call's (random_state = n_init = 50)."""
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "views.npz", Path(tmp) / "labels.npy"
        np.savez(data, **{f"v{i}": v for i, v in enumerate(views)})
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        done = subprocess.run(
            [python, "-c", _MVLEARN, str(data), str(out), str(N_CLUSTERS), str(random_state), str(n_init)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return np.load(out), float(done.stdout.strip().splitlines()[-1])


def silhouette(views: list[np.ndarray], labels: np.ndarray) -> float:
    x = np.hstack([(v - v.mean(0)) / (v.std(0) + 1e-9) for v in views])
    return float(silhouette_score(x, labels, sample_size=min(len(x), 4000), random_state=0))


def timed(fn, *args, **kw) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - start


def sizes_section(sizes: list[int], large: int, python: str | None) -> dict:
    columns = ["patches", "method", "seconds", "speed-up", "ARI truth", "ARI ours-mvlearn", "silhouette"]
    print(" | ".join(columns))
    rows = []
    for n in [*sizes, *([large] if large else [])]:
        views, truth = multiview_blobs(n, N_CLUSTERS, seed=1)
        ours, t_ours = timed(multiview_cluster, views, N_CLUSTERS, 0)
        mv, t_mv = run_mvlearn(python, views) if python and n != large else (None, None)
        between = round(adjusted_rand_score(ours, mv), 3) if mv is not None else "-"
        speed = f"{t_mv / t_ours:.0f}x" if mv is not None else "-"
        found = [["fusecpath", ours, t_ours, speed]] + (
            [["mvlearn", mv, t_mv, "1x"]] if mv is not None else []
        )
        for name, labels, seconds, sp in found:
            row = [n, name, round(seconds, 2), sp, round(adjusted_rand_score(truth, labels), 3), between]
            rows.append([*row, round(silhouette(views, labels), 3)])
            print(" | ".join(map(str, rows[-1])), flush=True)
    return {
        "heading": "fusecpath vs mvlearn by patch count (views of 32, 64, 128 dims)",
        "columns": columns,
        "rows": rows,
    }


def widths_section(widths: tuple[int, ...], n: int, python: str | None) -> dict:
    views, truth = multiview_blobs(n, N_CLUSTERS, dims=widths, seed=1)
    variants = [
        ("fusecpath (PCA-64, 10 restarts)", lambda: multiview_cluster(views, N_CLUSTERS, 0)),
        ("fusecpath, no PCA", lambda: multiview_cluster(views, N_CLUSTERS, 0, max_dims=max(widths))),
        ("fusecpath, 50 restarts", lambda: multiview_cluster(views, N_CLUSTERS, 0, n_init=50)),
    ]
    if python:
        variants.append(("mvlearn, 10 restarts", lambda: run_mvlearn(python, views, n_init=10)))
        variants.insert(0, ("mvlearn as official (50 restarts)", lambda: run_mvlearn(python, views)))
    columns = ["method", "seconds", "time / official mvlearn", "ARI truth", "ARI to official mvlearn"]
    print(f"{n} patches, views of {', '.join(map(str, widths))} dims")
    print(" | ".join(columns))
    rows, reference, t_ref = [], None, None
    for name, run in variants:
        start = time.perf_counter()
        out = run()
        labels, seconds = out if isinstance(out, tuple) else (out, time.perf_counter() - start)
        if reference is None and name.startswith("mvlearn as official"):
            reference, t_ref = labels, seconds
        ratio = f"{seconds / t_ref:.3f}" if t_ref else "-"
        to_mv = round(adjusted_rand_score(reference, labels), 3) if reference is not None else "-"
        rows.append([name, round(seconds, 2), ratio, round(adjusted_rand_score(truth, labels), 3), to_mv])
        print(" | ".join(map(str, rows[-1])), flush=True)
    return {
        "heading": f"at real FM widths: {n} patches, views of {', '.join(map(str, widths))} dims",
        "text": "mvlearn with 10 vs 50 restarts shows how far restarts alone move the clusters.",
        "columns": columns,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="2000,8000", help="patch counts compared with mvlearn ('' : skip)")
    parser.add_argument("--large", type=int, default=50000, help="patch count for ours alone (0: skip)")
    parser.add_argument(
        "--widths", default="", help="view widths for the real-width comparison, e.g. 1024,768,2560"
    )
    parser.add_argument("--patches", type=int, default=1000, help="rows for the real-width comparison")
    parser.add_argument("--mvlearn-python", default=None, help="an interpreter that can import mvlearn")
    parser.add_argument("--write", action="store_true", help="write benchmarks/results/cluster.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as mvlearn's run (OMP_NUM_THREADS=1): one core each, compared side by side
    python = mvlearn_python(args.mvlearn_python)
    if python is None:
        print("mvlearn is not importable (pass --mvlearn-python or set MVLEARN_PYTHON): its rows are skipped")
    sections = []
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if sizes or args.large:
        sections.append(sizes_section(sizes, args.large, python))
    if args.widths:
        sections.append(widths_section(tuple(int(w) for w in args.widths.split(",")), args.patches, python))
    if args.write:
        report = {
            "title": "Multi-view clustering: fusecpath vs mvlearn",
            "command": "python benchmarks/cluster.py "
            + shlex.join(argv if argv is not None else sys.argv[1:]),
            "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, shared; one thread each",
            "sections": sections,
        }
        write_atomic(RESULTS, json.dumps(report, indent=1) + "\n")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
