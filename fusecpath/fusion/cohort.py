"""The one way ``fuse`` gets its data: a ready cohort (features, clusters, labels) from a feature folder.

The folder is this project's store (one HDF5 file a slide) or a TRIDENT job folder
(``features_<encoder>/<slide>.h5``, read through ``fusecpath.features.trident``). Feature files are only
ever read; the multi-view clusters are cached under the run folder (``cache/clusters/<key>/``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusecpath.errors import FusecpathError
from fusecpath.files import write_atomic
from fusecpath.training.data import SlideData
from fusecpath.training.labels import Labels, read_labels

CLUSTER_ALGO = "cotrained-mvsc-1"  # bump when the clustering changes, so cached clusters are recomputed
log = logging.getLogger("fusecpath.fuse")


class CohortError(FusecpathError):
    """Features that do not match the FMs or labels asked for."""


@dataclass
class ReadyCohort:
    slides: dict[str, SlideData]  # in label order
    labels: Labels
    layout: str  # "fusecpath" or "trident"


def _is_trident(folder: Path) -> bool:
    try:
        from fusecpath.features.trident import is_trident_job
    except ImportError:  # TRIDENT support not installed in this build
        return False
    return is_trident_job(folder)


def slide_ids(folder: Path) -> list[str]:
    """The slides a feature folder holds."""
    if _is_trident(folder):
        from fusecpath.features.trident import trident_slide_ids

        return sorted(trident_slide_ids(folder))
    return sorted(p.stem for p in folder.glob("*.h5") if not p.name.startswith("."))


def _open(folder: Path, layout: str, slide_id: str):
    if layout == "trident":
        from fusecpath.features.trident import open_trident_slide

        return open_trident_slide(folder, slide_id)
    from fusecpath.features.store import feature_path, open_features

    return open_features(feature_path(folder, slide_id))


def cluster_key(patch_fms: list[dict], n_clusters: int, seed: int) -> str:
    blob = json.dumps([CLUSTER_ALGO, [fm["fingerprint"] for fm in patch_fms], n_clusters, seed]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def load_cohort(
    folder: Path,
    labels_path: Path,
    task: str,
    patch_fms: list[dict],
    slide_fms: list[dict],
    n_folds: int,
    positive: str | None = None,
) -> ReadyCohort:
    """The labelled slides' features (checked against the FMs' fingerprints where the files carry them)."""
    if not folder.is_dir():
        raise CohortError(f"{folder}: no such features folder; pass --slides DIR to extract features first")
    layout = "trident" if _is_trident(folder) else "fusecpath"
    labels = read_labels(
        labels_path, task, available=set(slide_ids(folder)), n_folds=n_folds, positive=positive
    )
    slides = {}
    for sid in labels.slide_ids:
        feats = _open(folder, layout, sid)
        missing = [fm["name"] for fm in patch_fms if fm["name"] not in feats.patch_fms()]
        missing += [fm["name"] for fm in slide_fms if fm["name"] not in feats.slide_fms()]
        if missing:
            have = ", ".join(feats.patch_fms() + feats.slide_fms()) or "none"
            raise CohortError(f"slide {sid!r} has no features of {', '.join(missing)} (it has: {have})")
        if layout == "fusecpath":
            for fm in [*patch_fms, *slide_fms]:
                have = feats.fingerprint(fm["name"])
                if have is not None and have != fm["fingerprint"]:
                    raise CohortError(
                        f"{feats.path}: {fm['name']} features were extracted with spec fingerprint {have}, "
                        f"the installed {fm['name']} is {fm['fingerprint']}; re-extract them"
                    )
        if len(feats.coords) == 0:
            raise CohortError(f"slide {sid!r} has no patches; remove it from the labels")
        slides[sid] = SlideData(
            sid,
            feats.coords,
            {fm["name"]: feats.patch(fm["name"]) for fm in patch_fms},
            {fm["name"]: feats.slide(fm["name"]) for fm in slide_fms},
            patch_size_level0=getattr(feats, "attrs", {}).get("patch_size_level0"),
        )
        for fm in patch_fms:
            if slides[sid].patch[fm["name"]].shape != (len(feats.coords), int(fm["embed_dim"])):
                raise CohortError(
                    f"slide {sid!r}: {fm['name']} features are {slides[sid].patch[fm['name']].shape}, "
                    f"expected ({len(feats.coords)}, {fm['embed_dim']})"
                )
    return ReadyCohort(slides, labels, layout)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def cluster_cohort(
    cohort: ReadyCohort, patch_fms: list[dict], n_clusters: int, seed: int, cache: Path
) -> dict[str, Any]:
    """Multi-view clusters of every slide, read from ``cache`` when there, else computed and cached there."""
    from fusecpath.fusion.cluster import multiview_cluster

    key = cluster_key(patch_fms, n_clusters, seed)
    folder = cache / "clusters" / key
    computed, start = 0, time.perf_counter()
    for sid, data in cohort.slides.items():
        path = folder / f"{hashlib.sha256(sid.encode()).hexdigest()[:16]}.npy"
        if path.is_file():
            cached = np.load(path, allow_pickle=False)
            if len(cached) == len(data.coords):
                data.clusters = cached.astype(np.int64)
                continue
        data.clusters = multiview_cluster([data.patch[fm["name"]] for fm in patch_fms], n_clusters, seed)
        write_atomic(path, _npy(data.clusters))
        computed += 1
    if computed:
        log.info("clustered %d slides (%.1f s); cached in %s", computed, time.perf_counter() - start, folder)
    return {"algorithm": CLUSTER_ALGO, "key": key, "computed": computed}


def open_ready_cohort(
    folder: Path,
    labels_path: Path,
    task: str,
    patch_fms: list[dict],
    slide_fms: list[dict],
    n_folds: int,
    n_clusters: int,
    seed: int,
    run_dir: Path,
    positive: str | None = None,
) -> ReadyCohort:
    """Features, labels and clusters of a cohort, ready to cross-validate."""
    cohort = load_cohort(folder, labels_path, task, patch_fms, slide_fms, n_folds, positive)
    cluster_cohort(cohort, patch_fms, n_clusters, seed, run_dir / "cache")
    return cohort
