"""``fuse``: cross-validate FuseCPath, its ablations and its baselines on the same patient-level folds,
repeated over seeds, then fit the final fused model on every slide and save it as a checkpoint folder.

RUN_DIR gets ``run.json`` (the options and preset), ``metrics.json`` (every method's mean, std,
corrected 95 % interval and fold scores; paired comparisons with every baseline), ``predictions.csv``
(out-of-fold, one row per seed, slide and method), ``folds.json``, ``roc.png`` (or ``km.png`` /
``scatter.png``), ``model/`` (the checkpoint), ``cache/`` (cluster caches) and, when slides were given,
``features/`` (the feature store). The features given with ``--features`` are only read.

Progress goes to the ``fusecpath.fuse`` logger and to ``FuseOptions.on_progress(done, total, message)``,
counted in training epochs over the whole run.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fusecpath.api import fm_records
from fusecpath.errors import FusecpathError
from fusecpath.files import write_atomic, write_csv
from fusecpath.fusion.cohort import CLUSTER_ALGO, open_ready_cohort
from fusecpath.report.html import write_run_report
from fusecpath.training import distributed
from fusecpath.training.folds import inner_split, kfold, strata
from fusecpath.training.labels import Labels, read_labels
from fusecpath.training.loop import TrainConfig, predict, train
from fusecpath.training.stats import corrected_interval, paired_difference
from fusecpath.training.tasks import KINDS, Task

PLOT_NAMES = {"classification": "roc.png", "regression": "scatter.png", "survival": "km.png"}
GUARD = "fusecpath-or-single"  # per fold, the fused model or a single-FM MIL model, by inner validation
BEST = "fusecpath-or-best"  # per fold, the fused model or any trained baseline: model selection
BASELINE_MODELS = ("r2tmil", "abmil", "transmil", "clam", "dsmil")
PRESETS = ("paper", "fast")
log = logging.getLogger("fusecpath.fuse")

Progress = Callable[[int, int, str], None]  # (epochs done, epochs in the run, what is running)


@dataclass
class FuseOptions:
    """Every knob of a run; ``FuseOptions.preset("paper" | "fast")`` gives a complete set."""

    folds: int = 5
    seeds: list[int] = field(default_factory=lambda: [0])
    baselines: bool = True
    models: tuple[str, ...] = BASELINE_MODELS  # MIL baseline families run when baselines is on
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
    progress: bool = True  # extraction progress bars (when slides are given)
    on_progress: Progress | None = None
    preset: str = "custom"
    positive: str | None = None  # binary classification: the positive class (else the labels file's)

    @property
    def seed(self) -> int:
        """The first seed: clustering, the final model."""
        return self.seeds[0]

    @classmethod
    def from_preset(cls, name: str, device: str = "cpu", **overrides: Any) -> FuseOptions:
        """The paper's GPU-sized settings or the fast CPU-sized ones, with ``overrides`` applied
        (``train`` overrides may be a dict of TrainConfig fields)."""
        if name not in PRESETS:
            raise FuseError(f"--preset must be one of {', '.join(PRESETS)}, not {name!r}")
        if name == "paper":
            base = cls(train=TrainConfig(device=device), preset=name)
        else:
            base = cls(
                n_clusters=16,
                per_cluster=4,
                n_bags=8,
                arch={"hidden": 128, "n_heads": 8, "attn_dim": 64},
                train=TrainConfig(
                    epochs=10, optimizer="adamw", lr=1e-3, weight_decay=1e-2, batch_size=32, device=device
                ),
                preset=name,
            )
        train_over = overrides.pop("train", {}) or {}
        arch_over = overrides.pop("arch", {}) or {}
        return replace(
            base,
            arch={**base.arch, **arch_over},
            train=TrainConfig(**{**base.train.to_dict(), **train_over}),
            **overrides,
        )

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("on_progress")
        record["models"] = list(self.models)
        return record


def default_preset(device: str) -> str:
    """``paper`` on a CUDA device, ``fast`` elsewhere."""
    return "paper" if str(device).startswith("cuda") else "fast"


@dataclass
class FuseResult:
    out: Path
    metrics: dict[str, Any]
    predictions: Path
    plot: Path
    checkpoint: Path | None
    seconds: float


class FuseError(FusecpathError):
    """A fuse run that cannot start (FMs, features, labels, options)."""


# ---------------------------------------------------------------------------------------------- checks


def split_fms(fms: Sequence[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(patch FM records, slide FM records), in the order given; at least one patch FM."""
    if isinstance(fms, str) or not all(isinstance(n, str) and n.strip() for n in fms):
        raise FuseError("--fms must be a list of FM names (e.g. --fms uni,conch-v1.5,virchow2)")
    records = fm_records([n.strip() for n in fms])
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


def check_options(task: str, options: FuseOptions) -> None:
    """Everything about the options that can be wrong, before any work."""
    if task not in KINDS:
        raise FuseError(f"--task must be one of {', '.join(KINDS)}, not {task!r}")
    seeds = options.seeds
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise FuseError(f"--seeds must be non-negative integers (e.g. --seeds 0,1,2), not {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise FuseError(f"--seeds repeats a seed: {seeds}")
    if options.folds < 2:
        raise FuseError(f"--folds must be at least 2, not {options.folds}")
    positive = {
        "--epochs": options.train.epochs,
        "--clusters": options.n_clusters,
        "--per-cluster": options.per_cluster,
        "--bags": options.n_bags,
        "--batch-size": options.train.batch_size,
    }
    for flag, value in positive.items():
        if value < 1:
            raise FuseError(f"{flag} must be at least 1, not {value}")
    if not 0 < options.val_fraction < 1:
        raise FuseError(f"the validation fraction must be in (0, 1), not {options.val_fraction}")
    if unknown := sorted(set(options.models) - set(BASELINE_MODELS)):
        raise FuseError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(BASELINE_MODELS)}")
    if options.cr2t not in ("fusecpath", "official"):
        raise FuseError(f"--cr2t is fusecpath or official, not {options.cr2t!r}")
    if options.preset not in (*PRESETS, "custom"):
        raise FuseError(f"--preset must be one of {', '.join(PRESETS)}, not {options.preset!r}")


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

        log.info("extracting %s from %s into %s", ", ".join(fm["name"] for fm in fms), slides, store)
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
            log.warning("skipped %s: %s", slide, error)
    return store


def _count_slides(slides: Path) -> int:
    from fusecpath.features.extract import find_slides

    return len(find_slides([slides])[0])


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


def build_methods(
    cohort: dict, patch_fms: list[dict], slide_fms: list[dict], options: FuseOptions, seed: int
) -> list:
    """FuseCPath first, then its ablations, the MIL baselines, mean pooling and the linear probes."""
    from fusecpath.fusion.baselines import MILMethod
    from fusecpath.fusion.methods import FuseCPathMethod, LinearMethod, mean_vectors, slide_vectors

    config = fused_config(patch_fms, slide_fms, options)
    bag = dict(n_bags=options.n_bags, per_cluster=options.per_cluster, seed=seed)
    methods = [FuseCPathMethod(cohort, config, **bag)]
    if not options.baselines:
        return methods
    names = [fm["name"] for fm in patch_fms]
    if slide_fms:
        no_teachers = {**config, "slide_fms": []}
        methods.append(FuseCPathMethod(cohort, no_teachers, name="fusecpath-no-distill", **bag))
        methods.append(FuseCPathMethod(cohort, config, name="fusecpath-random-bags", regions="random", **bag))
    views = [([n], n) for n in names] + ([(names, "concat")] if len(names) > 1 else [])
    hidden, proj = config["arch"]["hidden"], config["arch"]["proj"]
    size = options.n_clusters * options.per_cluster
    for model in options.models:
        for fms, label in views:
            if model == "r2tmil":
                own = {**config, "patch_fms": [fm for fm in patch_fms if fm["name"] in fms], "slide_fms": []}
                methods.append(FuseCPathMethod(cohort, own, name=f"r2tmil-{label}", regions="random", **bag))
            else:
                methods.append(
                    MILMethod(
                        cohort, fms, model, size, options.n_bags, hidden, seed, f"{model}-{label}", proj
                    )
                )
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


METRIC_RANGE = {"pearson": (-1.0, 1.0), "mse": (0.0, float("inf"))}  # the others lie in [0, 1]


def summarise(values: list[float], test_train_ratio: float, metric: str = "") -> dict[str, Any]:
    """mean, std, corrected 95 % interval (clipped to the metric's range) and every (seed, fold) score."""
    iv = corrected_interval(values, test_train_ratio)
    low, high = METRIC_RANGE.get(metric, (0.0, 1.0))
    ci = [max(iv.lo, low), min(iv.hi, high)] if iv.n else [iv.lo, iv.hi]
    return {"mean": iv.mean, "std": iv.std, "ci95": ci, "folds": [float(v) for v in values]}


def compare(per_fold: dict[str, dict[str, list[float]]], test_train_ratio: float) -> dict[str, Any]:
    """fusecpath - baseline, per metric, over the matched (seed, fold) pairs, with the corrected interval."""
    ours = per_fold["fusecpath"]
    out: dict[str, Any] = {}
    for name, values in per_fold.items():
        if name == "fusecpath":
            continue
        out[name] = {}
        for metric, theirs in values.items():
            iv = paired_difference(ours[metric], theirs, test_train_ratio)
            out[name][metric] = {
                "difference": iv.mean,
                "ci95": [iv.lo, iv.hi],
                "excludes_zero": bool(iv.excludes_zero),
                "pairs": iv.n,
            }
    return out


def single_fm_names(names: Sequence[str], models: Sequence[str], patch_fms: Sequence[str]) -> list[str]:
    """The run's single-FM MIL models, ``<model>-<fm>``, in the order they ran."""
    wanted = {f"{model}-{fm}" for model in models for fm in patch_fms}
    return [n for n in names if n in wanted]


def baseline_names(names: Sequence[str]) -> list[str]:
    """The run's trained baselines: every method but FuseCPath and its ablations."""
    return [n for n in names if n != "fusecpath" and not n.startswith("fusecpath-")]


def guard_jobs(
    done: list[dict[str, Any]], candidates: Sequence[str], name: str = GUARD
) -> list[dict[str, Any]]:
    """For every (seed, fold), the ``fusecpath`` job or the candidate job with the better inner-validation
    score (the training loop's: metric, then loss, at the kept epoch; a tie keeps ``fusecpath``), as a
    job of method ``name`` with the chosen method under ``chosen`` and every candidate's score under
    ``validation``. Only the training fold's validation split decides, so its test scores are a nested
    estimate of fuse-or-not."""
    pool: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for job in done:
        if job["method"] == "fusecpath" or job["method"] in candidates:
            pool.setdefault((job["seed"], job["fold"]), []).append(job)
    out = []
    for jobs in pool.values():
        jobs.sort(key=lambda j: j["method"] != "fusecpath")  # fusecpath first: max keeps the first tie
        best = max(jobs, key=lambda j: j["val"])
        seen = {j["method"]: {"metric": j["val"][0], "loss": -j["val"][1]} for j in jobs}
        out.append({**best, "method": name, "chosen": best["method"], "validation": seen})
    return out


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
    """Cross-validate the fusion of ``fms`` (patch FMs fused, slide FMs as teachers), its ablations and
    baselines, once per seed; then fit the final fused model. Without ``options``: the CPU preset."""
    options = options or FuseOptions.from_preset("fast")
    start = time.perf_counter()
    out = Path(out)
    check_options(task, options)
    if features is None and slides is None:
        raise FuseError("give --features DIR (extracted features) or --slides DIR (slides to extract)")
    for flag, folder in (("--features", features), ("--slides", slides)):
        if folder is not None and not Path(folder).is_dir() and not (flag == "--features" and slides):
            raise FuseError(f"{flag} {folder}: no such folder")
    patch_fms, slide_fms = split_fms(fms)
    read_labels(labels, task, n_folds=options.folds, positive=options.positive)  # before any work
    # under torchrun: rank 0 extracts and caches clusters first; the others then read them
    dist = distributed.setup(options.train.device)
    prefix = f"rank {dist.rank}: " if dist.enabled else ""
    with dist.main_first():
        out.mkdir(parents=True, exist_ok=True)
        store = ensure_features(
            [*patch_fms, *slide_fms],
            Path(features) if features else None,
            Path(slides) if slides else None,
            out,
            options,
        )
        ready = open_ready_cohort(
            store,
            Path(labels),
            task,
            patch_fms,
            slide_fms,
            options.folds,
            options.n_clusters,
            options.seed,
            out,
            positive=options.positive,
        )
    lab = ready.labels
    the_task = Task(task, classes=lab.classes, targets=lab.targets, positive=lab.positive or 0)
    if lab.positive is not None and dist.is_main:
        log.info("%s%s", prefix, lab.positive_note())
    strat = strata(task, lab.y)
    plan = {seed: kfold(strat, lab.patients, options.folds, seed) for seed in options.seeds}
    methods = {
        seed: build_methods(ready.slides, patch_fms, slide_fms, options, seed) for seed in options.seeds
    }
    names = [m.name for m in methods[options.seed]]
    log.info(
        "%s%d methods x %d folds x %d seeds (preset %s, %d epochs each)",
        prefix,
        len(names),
        options.folds,
        len(options.seeds),
        options.preset,
        options.train.epochs,
    )
    if dist.is_main:
        run = {"fms": [fm["name"] for fm in [*patch_fms, *slide_fms]], "task": task, "layout": ready.layout}
        write_atomic(out / "run.json", json.dumps({**run, "options": options.to_dict()}, indent=1) + "\n")
        folds_record = [
            {"seed": seed, "fold": i, "test": [lab.slide_ids[j] for j in te]}
            for seed, folds in plan.items()
            for i, (_, te) in enumerate(folds)
        ]
        write_atomic(out / "folds.json", json.dumps(folds_record, indent=1))

    # every (seed, fold, method) job trains alone with its own seed on whichever rank runs it
    jobs = [(seed, f, m) for seed in options.seeds for f in range(options.folds) for m in range(len(names))]
    meter = _Meter(options, len(jobs) + int(options.final_fit), prefix)
    done = dist.gather(
        [
            _cv_job(seed, f, methods[seed][m], plan[seed][f], lab, strat, the_task, options, meter)
            for seed, f, m in dist.shard(jobs)
        ]
    )
    order = {(seed, f, names[m]): i for i, (seed, f, m) in enumerate(jobs)}
    done.sort(key=lambda job: order[job["seed"], job["fold"], job["method"]])
    singles = single_fm_names(names, options.models, [fm["name"] for fm in patch_fms])
    guards = {GUARD: singles, BEST: baseline_names(names)} if singles and len(patch_fms) > 1 else {}
    guarded = {guard: guard_jobs(done, candidates, guard) for guard, candidates in guards.items()}
    for guard, picks in guarded.items():
        names.append(guard)
        done += picks

    ids = np.array(lab.slide_ids)
    per_fold: dict[str, dict[str, list[float]]] = {n: {k: [] for k in the_task.metric_names} for n in names}
    width = the_task.n_outputs if task != "survival" else 1
    oof = {n: np.zeros((len(ids), width)) for n in names}  # the first seed's, for the plot
    rows: list[dict[str, Any]] = []
    for job in done:
        for k, v in job["scores"].items():
            per_fold[job["method"]][k].append(v)
        test_idx, pred = job["test_idx"], job["pred"]
        if job["seed"] == options.seed:
            oof[job["method"]][test_idx] = pred.reshape(len(test_idx), -1)
        for i, p in zip(test_idx, pred, strict=True):
            rows.append(
                {
                    "slide_id": ids[i],
                    "patient_id": lab.patients[i],
                    "seed": job["seed"],
                    "fold": job["fold"],
                    "method": job["method"],
                    **_label_columns(the_task, lab.y[i]),
                    **_prediction_columns(the_task, p),
                }
            )

    ratio = float(np.mean([len(te) / len(tr) for folds in plan.values() for tr, te in folds]))
    metrics = {
        "task": task,
        "folds": options.folds,
        "seeds": list(options.seeds),
        "preset": options.preset,
        "interval": "Nadeau-Bengio corrected resampled t, 95 %, over (seed, fold) scores",
        "test_train_ratio": ratio,
        "methods": {
            n: {k: summarise(v, ratio, k) for k, v in values.items()} for n, values in per_fold.items()
        },
        "comparisons": compare(per_fold, ratio),
    }
    if guarded:
        metrics["guards"] = {
            guard: {
                "candidates": ["fusecpath", *guards[guard]],
                "rule": "per (seed, fold): the best inner-validation score (metric, then loss) at the kept epoch",
                "chosen": [
                    {
                        "seed": j["seed"],
                        "fold": j["fold"],
                        "method": j["chosen"],
                        "validation": j["validation"],
                    }
                    for j in picks
                ],
            }
            for guard, picks in guarded.items()
        }
    predictions, plot = out / "predictions.csv", out / PLOT_NAMES[task]
    if dist.is_main:
        write_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        write_csv(predictions, rows)
        plot = _plot(the_task, lab, oof, metrics, out)
    checkpoint = None
    if options.final_fit:
        checkpoint = _final_fit(
            methods[options.seed][0], the_task, lab, strat, options, metrics, plot, out, meter, dist
        )
    if dist.is_main:
        log.info("report: %s", write_run_report(out))
    return FuseResult(out, metrics, predictions, plot, checkpoint, time.perf_counter() - start)


class _Meter:
    """Counts training epochs over the whole run and reports them to ``options.on_progress``."""

    def __init__(self, options: FuseOptions, n_trainings: int, prefix: str) -> None:
        self.callback, self.prefix = options.on_progress, prefix
        self.done, self.total = 0, n_trainings * options.train.epochs

    def epoch(self, what: str) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(self.done, self.total, what)

    def finished(self, what: str, epochs_run: int, epochs: int) -> None:
        """A training that stopped early still counts all its epochs."""
        self.done += epochs - epochs_run
        log.info("%s%s", self.prefix, what)
        if self.callback is not None:
            self.callback(self.done, self.total, what)


def _train_split(
    method,
    task: Task,
    lab: Labels,
    fit: np.ndarray,
    val: np.ndarray,
    cfg: TrainConfig,
    on_epoch: Callable[[int], None],
    dist: distributed.Dist | None = None,
):
    """``train`` on the slides at positions ``fit``, the epoch chosen on those at ``val``."""
    ids = np.array(lab.slide_ids)
    return train(
        method,
        task,
        list(ids[fit]),
        lab.y[fit],
        list(ids[val]),
        lab.y[val],
        cfg,
        dist=dist,
        on_epoch=on_epoch,
    )


def _cv_job(
    seed: int,
    f: int,
    method,
    fold: tuple[np.ndarray, np.ndarray],
    lab: Labels,
    strat: np.ndarray,
    task: Task,
    options: FuseOptions,
    meter: _Meter,
) -> dict[str, Any]:
    """Train ``method`` on fold ``f``'s training slides (epoch chosen on an inner validation split) and
    predict its test slides."""
    t0 = time.perf_counter()
    train_idx, test_idx = fold
    ids = np.array(lab.slide_ids)
    fit, val = inner_split(strat[train_idx], lab.patients[train_idx], seed + f, options.val_fraction)
    fit, val = train_idx[fit], train_idx[val]
    cfg = TrainConfig(**{**options.train.to_dict(), "seed": seed * 1000 + f})
    what = f"seed {seed} fold {f + 1}/{options.folds} {method.name}"
    model, info = _train_split(method, task, lab, fit, val, cfg, lambda e: meter.epoch(what))
    pred = predict(method, model, task, list(ids[test_idx]), cfg.device)
    scores = task.evaluate(lab.y[test_idx], pred)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
    meter.finished(
        f"{what}: {shown} (epoch {info['best_epoch'] + 1}, {time.perf_counter() - t0:.1f} s)",
        len(info["history"]),
        cfg.epochs,
    )
    kept = info["history"][info["best_epoch"]]
    return {
        "seed": seed,
        "fold": f,
        "method": method.name,
        "scores": scores,
        "test_idx": test_idx,
        "pred": pred,
        "val": (kept["val_metric"], -kept["val_loss"]),
    }


def _final_fit(
    method,
    task: Task,
    lab: Labels,
    strat: np.ndarray,
    options: FuseOptions,
    metrics: dict,
    plot: Path,
    out: Path,
    meter: _Meter,
    dist: distributed.Dist,
) -> Path | None:
    """The fused model trained on every slide (epoch chosen on a held-out validation split), saved by
    rank 0. Under torchrun every rank trains it together (DDP, batches split across ranks)."""
    ids = np.array(lab.slide_ids)
    fit, val = inner_split(strat, lab.patients, options.seed, options.val_fraction)
    cfg = TrainConfig(**{**options.train.to_dict(), "seed": options.seed})
    model, info = _train_split(method, task, lab, fit, val, cfg, lambda e: meter.epoch("final model"), dist)
    meter.finished(f"final model: epoch {info['best_epoch'] + 1} kept", len(info["history"]), cfg.epochs)
    if not dist.is_main:
        return None
    model.config["cohort"] = {"slides": len(ids), "patients": int(len(np.unique(lab.patients)))}
    model.config["task"] = task.to_config()
    model.config["preset"] = options.preset
    path = save_model(model, out / "model", metrics, {f"plots/{plot.name}": plot})
    log.info("final model saved to %s", path)
    return path


def save_model(model, directory: Path, metrics: dict | None = None, files: dict | None = None) -> Path:
    """The checkpoint folder of the hub module (safetensors, config.json, card, checksums)."""
    from fusecpath.checkpoint.folder import write_checkpoint

    return write_checkpoint(directory, model.state_dict(), model.config, metrics=metrics, files=files)
