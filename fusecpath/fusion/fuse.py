"""``fuse``: cross-validate FuseCPath and its baselines on the same patient-level folds, then fit the
final fused model on every slide and save it as a checkpoint folder.

RUN_DIR gets ``metrics.json``, ``predictions.csv`` (out-of-fold, one row per slide and method),
``folds.json``, ``roc.png`` (or ``km.png`` / ``scatter.png``), ``model/`` (the checkpoint) and, when
slides were given, ``features/`` (the feature store).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusecpath.api import fm_records
from fusecpath.errors import FusecpathError
from fusecpath.files import write_atomic, write_csv
from fusecpath.report.html import write_run_report
from fusecpath.training import distributed
from fusecpath.training.folds import inner_split, kfold, strata
from fusecpath.training.labels import Labels, read_labels
from fusecpath.training.loop import TrainConfig, predict, train
from fusecpath.training.tasks import Task

PLOT_NAMES = {"classification": "roc.png", "regression": "scatter.png", "survival": "km.png"}
CLUSTER_ALGO = "cotrained-mvsc-1"  # bump when the clustering changes, so cached clusters are recomputed


@dataclass
class FuseOptions:
    """Every knob of a run. Defaults are the paper's, except ``epochs`` (CPU-friendly)."""

    folds: int = 5
    seed: int = 0
    baselines: bool = True
    n_clusters: int = 50
    per_cluster: int = 10
    n_bags: int = 50
    arch: dict[str, Any] = field(default_factory=dict)  # overrides of fusion.model.ARCH_DEFAULTS
    cr2t: str = "fusecpath"  # "official": fusion.model.OFFICIAL_ARCH under the arch overrides
    train: TrainConfig = field(default_factory=TrainConfig)
    val_fraction: float = 0.2
    mpp: float | None = None  # for slides whose file lacks microns per pixel
    workers: int = 0
    final_fit: bool = True
    progress: bool = True
    positive: str | None = None  # binary classification: the positive class (else the labels file's)


@dataclass
class FuseResult:
    out: Path
    metrics: dict[str, Any]
    predictions: Path
    plot: Path
    checkpoint: Path | None
    seconds: float


class FuseError(FusecpathError):
    """A fuse run that cannot start (FMs, features, labels)."""


def _log(options: FuseOptions, message: str) -> None:
    if options.progress:
        from rich.console import Console

        Console(stderr=True).print(f"[dim]fuse:[/dim] {message}", highlight=False)


# ---------------------------------------------------------------------------------------------- FMs


def split_fms(fms: Sequence[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(patch FM records, slide FM records), in the order given; at least one patch FM."""
    records = fm_records(fms)
    names = [r["name"] for r in records]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise FuseError(f"--fms names {dup[0]!r} twice")
    patch = [r for r in records if r["level"] == "patch"]
    slide = [r for r in records if r["level"] == "slide"]
    if not patch:
        raise FuseError(
            "--fms names no patch FM; fusion needs at least one (e.g. --fms hed-stain,gabor-texture)"
        )
    return patch, slide


# ---------------------------------------------------------------------------------------------- features


def _stored_ids(features: Path) -> list[str]:
    return sorted(p.stem for p in features.glob("*.h5") if not p.name.startswith("."))


def ensure_features(
    fms: list[dict[str, Any]], features: Path | None, slides: Path | None, out: Path, options: FuseOptions
) -> Path:
    """The feature folder, after extracting whatever FM is missing or stale (needs ``slides``)."""
    from fusecpath.features.store import open_features

    store = features if features is not None else out / "features"
    if slides is None:
        if not store.is_dir():
            raise FuseError(f"{store}: no such features folder; pass --slides DIR to extract features first")
        return store
    stale = not store.is_dir() or not _stored_ids(store)
    if not stale:
        for sid in _stored_ids(store):
            feats = open_features(store / f"{sid}.h5")
            stale |= any(feats.fingerprint(fm["name"]) != fm["fingerprint"] for fm in fms)
    if stale or len(_stored_ids(store)) < _count_slides(slides):
        from fusecpath.features.extract import extract

        _log(options, f"extracting {', '.join(fm['name'] for fm in fms)} from {slides} into {store}")
        result = extract(
            [slides],
            [fm["name"] for fm in fms],
            store,
            mpp=options.mpp,
            workers=options.workers,
            device=options.train.device,
            progress=options.progress,
        )
        for slide, error in result.failures:
            _log(options, f"[yellow]skipped {slide}: {error}[/yellow]")
    return store


def _count_slides(slides: Path) -> int:
    from fusecpath.features.extract import find_slides

    return len(find_slides([slides])[0])


def load_cohort(store: Path, labels: Labels, patch_fms: list[dict], slide_fms: list[dict]):
    """The labelled slides' features, checked against the FMs' fingerprints."""
    from fusecpath.features.store import feature_path, open_features
    from fusecpath.training.data import SlideData

    cohort = {}
    for sid in labels.slide_ids:
        feats = open_features(feature_path(store, sid))
        for fm in [*patch_fms, *slide_fms]:
            have = feats.fingerprint(fm["name"])
            if have is not None and have != fm["fingerprint"]:
                raise FuseError(
                    f"{feats.path}: {fm['name']} features were extracted with spec fingerprint {have}, "
                    f"the installed {fm['name']} is {fm['fingerprint']}; re-extract them"
                )
        patch = {fm["name"]: feats.patch(fm["name"]) for fm in patch_fms}
        if len(feats) == 0:
            raise FuseError(f"{feats.path}: no patches; remove slide {sid!r} from the labels")
        cohort[sid] = SlideData(
            sid,
            feats.coords,
            patch,
            {fm["name"]: feats.slide(fm["name"]) for fm in slide_fms},
            patch_size_level0=feats.attrs.get("patch_size_level0"),
        )
    return cohort


def cluster_key(patch_fms: list[dict], n_clusters: int, seed: int) -> str:
    blob = json.dumps([CLUSTER_ALGO, [fm["fingerprint"] for fm in patch_fms], n_clusters, seed]).encode()
    return "clusters/" + hashlib.sha256(blob).hexdigest()[:16]


def cluster_cohort(
    cohort: dict, store: Path, patch_fms: list[dict], n_clusters: int, seed: int, log: Callable[[str], None]
) -> None:
    """Multi-view clusters of every slide, read from the store when cached there, else computed and cached."""
    from fusecpath.features.store import feature_path, open_features, write_arrays
    from fusecpath.fusion.cluster import multiview_cluster

    key = cluster_key(patch_fms, n_clusters, seed)
    computed, start = 0, time.perf_counter()
    for sid, data in cohort.items():
        path = feature_path(store, sid)
        feats = open_features(path)
        if feats.has(key) and len(feats.array(key)) == len(data.coords):
            data.clusters = feats.array(key).astype(np.int64)
            continue
        data.clusters = multiview_cluster([data.patch[fm["name"]] for fm in patch_fms], n_clusters, seed)
        computed += 1
        if feats.format == "fusecpath":
            write_arrays(
                path,
                {key: data.clusters},
                {
                    key: {
                        "fms": ",".join(fm["name"] for fm in patch_fms),
                        "n_clusters": n_clusters,
                        "seed": seed,
                        "algorithm": CLUSTER_ALGO,
                    }
                },
            )
    if computed:
        log(f"clustered {computed} slides ({time.perf_counter() - start:.1f} s); cached as {key}")


# ---------------------------------------------------------------------------------------------- methods


def fused_config(patch_fms: list[dict], slide_fms: list[dict], options: FuseOptions) -> dict[str, Any]:
    from fusecpath import __version__
    from fusecpath.fusion.cluster import N_ITER, N_NEIGHBORS
    from fusecpath.fusion.methods import DISTILL_LAMBDA
    from fusecpath.fusion.model import ARCH_DEFAULTS, OFFICIAL_ARCH

    if options.cr2t not in ("fusecpath", "official"):
        raise FuseError(f"--cr2t is fusecpath or official, not {options.cr2t!r}")
    official = OFFICIAL_ARCH if options.cr2t == "official" else {}
    return {
        "name": "fusecpath",
        "fusecpath_version": __version__,
        "patch_fms": patch_fms,
        "slide_fms": slide_fms,
        "clustering": {
            "algorithm": CLUSTER_ALGO,
            "n_clusters": options.n_clusters,
            "seed": options.seed,
            "n_neighbors": N_NEIGHBORS,
            "n_iter": N_ITER,
        },
        "bags": {"per_cluster": options.per_cluster, "n_bags": options.n_bags},
        "arch": {**ARCH_DEFAULTS, **official, **options.arch},
        "distillation": {"lambda": DISTILL_LAMBDA, "teachers": [fm["name"] for fm in slide_fms]},
        "training": options.train.to_dict(),
    }


def build_methods(cohort: dict, patch_fms: list[dict], slide_fms: list[dict], options: FuseOptions) -> list:
    from fusecpath.fusion.methods import (
        ABMILMethod,
        FuseCPathMethod,
        LinearMethod,
        mean_vectors,
        slide_vectors,
    )

    config = fused_config(patch_fms, slide_fms, options)
    bag = dict(n_bags=options.n_bags, per_cluster=options.per_cluster, seed=options.seed)
    methods = [FuseCPathMethod(cohort, config, **bag)]
    if not options.baselines:
        return methods
    hidden = config["arch"]["hidden"]
    names = [fm["name"] for fm in patch_fms]
    if slide_fms:
        methods.append(
            FuseCPathMethod(cohort, {**config, "slide_fms": []}, name="fusecpath-no-distill", **bag)
        )
    size = options.n_clusters * options.per_cluster
    methods += [ABMILMethod(cohort, [n], size, options.n_bags, hidden, name=f"abmil-{n}") for n in names]
    if len(names) > 1:
        methods.append(ABMILMethod(cohort, names, size, options.n_bags, hidden, name="abmil-concat"))
    methods.append(
        LinearMethod(
            mean_vectors(cohort, names), name="meanpool-" + ("concat" if len(names) > 1 else names[0])
        )
    )
    methods += [
        LinearMethod(slide_vectors(cohort, fm["name"]), name=f"linear-{fm['name']}") for fm in slide_fms
    ]
    return methods


# ---------------------------------------------------------------------------------------------- the run


def _summary(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    mean = float(finite.mean()) if len(finite) else float("nan")
    std = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
    return {"mean": mean, "std": std, "folds": [float(v) for v in arr]}


def _prediction_columns(task: Task, pred: np.ndarray) -> dict[str, float]:
    if task.kind == "classification":
        return {f"prob_{c}": float(p) for c, p in zip(task.classes, pred, strict=True)}
    if task.kind == "regression":
        return {f"pred_{t}": float(p) for t, p in zip(task.targets, np.atleast_1d(pred), strict=True)}
    return {"risk": float(np.atleast_1d(pred)[0])}


def _label_columns(task: Task, y: np.ndarray) -> dict[str, Any]:
    if task.kind == "classification":
        return {"label": task.classes[int(y)]}
    if task.kind == "regression":
        return {t: float(v) for t, v in zip(task.targets, np.atleast_1d(y), strict=True)}
    return {"time": float(y[0]), "event": int(y[1])}


def _plot(task: Task, labels: Labels, oof: dict[str, np.ndarray], metrics: dict, out: Path) -> Path:
    from fusecpath.report.plots import plot_results

    means = {name: values[task.selection_metric]["mean"] for name, values in metrics["methods"].items()}
    if task.kind == "classification":
        positive = task.positive if len(task.classes) == 2 else 0
        curves = {name: (labels.y == positive, pred[:, positive]) for name, pred in oof.items()}
        title = f"out-of-fold ROC, class {task.classes[positive]!r}" + (
            "" if len(task.classes) == 2 else " vs rest"
        )
        return plot_results("classification", curves, means, out / PLOT_NAMES["classification"], title)
    if task.kind == "regression":
        curves = {"fusecpath": (labels.y[:, 0], oof["fusecpath"].reshape(len(labels.y), -1)[:, 0])}
        return plot_results(
            "regression", curves, means, out / PLOT_NAMES["regression"], f"out-of-fold, {task.targets[0]}"
        )
    curves = {"fusecpath": ((labels.y[:, 0], labels.y[:, 1]), oof["fusecpath"].reshape(-1))}
    return plot_results("survival", curves, means, out / PLOT_NAMES["survival"], "out-of-fold risk groups")


def fuse(
    fms: Sequence[str],
    labels: str | Path,
    task: str,
    out: str | Path,
    *,
    features: str | Path | None = None,
    slides: str | Path | None = None,
    options: FuseOptions | None = None,
) -> FuseResult:
    """Cross-validate the fusion of ``fms`` (patch FMs fused, slide FMs as teachers) and its baselines."""
    options = options or FuseOptions()
    start = time.perf_counter()
    out = Path(out)
    if features is None and slides is None:
        raise FuseError("give --features DIR (extracted features) or --slides DIR (slides to extract)")
    if options.folds < 2:
        raise FuseError(f"--folds must be at least 2, not {options.folds}")
    patch_fms, slide_fms = split_fms(fms)
    # under torchrun: rank 0 extracts and caches clusters first; the others then read them
    dist = distributed.setup(options.train.device)
    prefix = f"rank {dist.rank}: " if dist.enabled else ""
    log = lambda message: _log(options, prefix + message)  # noqa: E731
    with dist.main_first():
        out.mkdir(parents=True, exist_ok=True)
        store = ensure_features(
            [*patch_fms, *slide_fms],
            Path(features) if features else None,
            Path(slides) if slides else None,
            out,
            options,
        )
        lab = read_labels(
            labels, task, available=set(_stored_ids(store)), n_folds=options.folds, positive=options.positive
        )
        cohort = load_cohort(store, lab, patch_fms, slide_fms)
        cluster_cohort(cohort, store, patch_fms, options.n_clusters, options.seed, log)
    the_task = Task(task, classes=lab.classes, targets=lab.targets, positive=lab.positive or 0)
    if lab.positive is not None and dist.is_main:
        log(lab.positive_note())
    methods = build_methods(cohort, patch_fms, slide_fms, options)
    strat = strata(task, lab.y)
    folds = kfold(strat, lab.patients, options.folds, options.seed)
    if dist.is_main:
        write_atomic(
            out / "folds.json",
            json.dumps(
                [{"fold": i, "test": [lab.slide_ids[j] for j in te]} for i, (_, te) in enumerate(folds)],
                indent=1,
            ),
        )

    # every (fold, method) job trains alone with the same seed on whichever rank runs it
    jobs = [(f, m) for f in range(len(folds)) for m in range(len(methods))]
    done = dist.gather(
        [_cv_job(f, methods[m], folds[f], lab, strat, the_task, options, log) for f, m in dist.shard(jobs)]
    )
    order = {(method.name, f): i for i, (f, m) in enumerate(jobs) for method in [methods[m]]}
    done.sort(key=lambda job: order[job["method"], job["fold"]])

    ids = np.array(lab.slide_ids)
    per_fold: dict[str, dict[str, list[float]]] = {
        m.name: {k: [] for k in the_task.metric_names} for m in methods
    }
    oof = {m.name: np.zeros((len(ids), the_task.n_outputs if task != "survival" else 1)) for m in methods}
    rows: list[dict[str, Any]] = []
    for job in done:
        for k, v in job["scores"].items():
            per_fold[job["method"]][k].append(v)
        test_idx, pred = job["test_idx"], job["pred"]
        oof[job["method"]][test_idx] = pred.reshape(len(test_idx), -1)
        for i, p in zip(test_idx, pred, strict=True):
            rows.append(
                {
                    "slide_id": ids[i],
                    "patient_id": lab.patients[i],
                    "fold": job["fold"],
                    "method": job["method"],
                    **_label_columns(the_task, lab.y[i]),
                    **_prediction_columns(the_task, p),
                }
            )

    metrics = {
        "task": task,
        "folds": options.folds,
        "methods": {name: {k: _summary(v) for k, v in values.items()} for name, values in per_fold.items()},
    }
    predictions, plot = out / "predictions.csv", out / PLOT_NAMES[task]
    if dist.is_main:
        write_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        write_csv(predictions, rows)
        plot = _plot(the_task, lab, oof, metrics, out)
    checkpoint = None
    if options.final_fit:
        checkpoint = _final_fit(methods[0], the_task, lab, strat, options, metrics, plot, out, log, dist)
    if dist.is_main:
        log(f"report: {write_run_report(out)}")
    return FuseResult(out, metrics, predictions, plot, checkpoint, time.perf_counter() - start)


def _cv_job(
    f: int,
    method,
    fold: tuple[np.ndarray, np.ndarray],
    lab: Labels,
    strat: np.ndarray,
    task: Task,
    options: FuseOptions,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Train ``method`` on fold ``f``'s training slides (epoch chosen on an inner validation split) and
    predict its test slides."""
    t0 = time.perf_counter()
    train_idx, test_idx = fold
    ids = np.array(lab.slide_ids)
    fit, val = inner_split(strat[train_idx], lab.patients[train_idx], options.seed + f, options.val_fraction)
    fit, val = train_idx[fit], train_idx[val]
    cfg = TrainConfig(**{**options.train.to_dict(), "seed": options.seed + f})
    model, info = train(method, task, list(ids[fit]), lab.y[fit], list(ids[val]), lab.y[val], cfg)
    pred = predict(method, model, task, list(ids[test_idx]), cfg.device)
    scores = task.evaluate(lab.y[test_idx], pred)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
    log(
        f"fold {f + 1}/{options.folds} {method.name}: {shown} (epoch {info['best_epoch'] + 1}, "
        f"{time.perf_counter() - t0:.1f} s)"
    )
    return {"fold": f, "method": method.name, "scores": scores, "test_idx": test_idx, "pred": pred}


def _final_fit(
    method,
    task: Task,
    lab: Labels,
    strat: np.ndarray,
    options: FuseOptions,
    metrics: dict,
    plot: Path,
    out: Path,
    log: Callable[[str], None],
    dist: distributed.Dist,
) -> Path | None:
    """The fused model trained on every slide (epoch chosen on a held-out validation split), saved by
    rank 0. Under torchrun every rank trains it together (DDP, batches split across ranks)."""
    ids = np.array(lab.slide_ids)
    fit, val = inner_split(strat, lab.patients, options.seed, options.val_fraction)
    model, info = train(
        method, task, list(ids[fit]), lab.y[fit], list(ids[val]), lab.y[val], options.train, dist=dist
    )
    if not dist.is_main:
        return None
    model.config["cohort"] = {"slides": len(ids), "patients": int(len(np.unique(lab.patients)))}
    model.config["task"] = task.to_config()
    path = save_model(model, out / "model", metrics, {f"plots/{plot.name}": plot})
    log(f"final model (epoch {info['best_epoch'] + 1}) saved to {path}")
    return path


def save_model(model, directory: Path, metrics: dict | None = None, files: dict | None = None) -> Path:
    """The checkpoint folder of the hub module (safetensors, config.json, card, checksums)."""
    from fusecpath.checkpoint.folder import write_checkpoint

    return write_checkpoint(directory, model.state_dict(), model.config, metrics=metrics, files=files)
