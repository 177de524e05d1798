"""``fusecpath predict``: a fused model (a run folder, a checkpoint or a Hub repo) on new slides.

1. load the checkpoint (checksums verified) and check that every patch FM it fuses is installed with the
   same spec fingerprint, else refuse with the reason (slide FMs were teachers in training: not needed);
2. extract those FMs' features into ``OUT/features`` (the ordinary feature store: re-runs reuse it);
3. per slide: cluster, score every bag, average (``fusion.predict_slide``), with per-patch attention;
4. write ``predictions.csv``, ``index.html`` (every slide's heatmap and prediction on one self-contained
   page) and, per slide, ``heatmaps/<slide>.png`` and ``heatmaps/<slide>.geojson``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusecpath.errors import FusecpathError
from fusecpath.files import write_csv


class ModelMismatchError(FusecpathError):
    """The installed FMs are not the ones the model was fused from."""


@dataclass
class PredictResult:
    model: str
    out: Path
    predictions: Path | None
    rows: list[dict[str, Any]] = field(default_factory=list)  # one a slide, as in predictions.csv
    failures: list[tuple[str, str]] = field(default_factory=list)  # (slide, one-line reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "out": str(self.out),
            "predictions": str(self.predictions) if self.predictions else None,
            "slides": self.rows,
            "failures": [{"slide": s, "error": e} for s, e in self.failures],
        }


def needed_fms(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The FM records a prediction needs: the fused patch FMs (``fms`` for a generic config)."""
    return list(config.get("patch_fms") or config.get("fms") or [])


def check_fms(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The FMs prediction needs, each installed with the fingerprint the model was fused with; else refuse."""
    from fusecpath.checkpoint.hub import requirements

    rows = requirements({"fms": needed_fms(config)})
    if not rows:
        raise ModelMismatchError("the model's config.json names no patch FM; it is not a fused model")
    problems = [row["problem"] for row in rows if not row["ok"]]
    if problems:
        raise ModelMismatchError("the model cannot run here: " + "; ".join(problems))
    return rows


def prediction_columns(task, output: np.ndarray) -> dict[str, Any]:
    """Columns of one slide's prediction: the predicted class and its probabilities, targets, or risk."""
    output = np.atleast_1d(np.asarray(output, dtype=float))
    if task.kind == "classification":
        return {
            "prediction": task.classes[int(output.argmax())],
            **{f"prob_{c}": float(p) for c, p in zip(task.classes, output, strict=True)},
        }
    if task.kind == "regression":
        return {f"pred_{t}": float(v) for t, v in zip(task.targets, output, strict=True)}
    return {"risk": float(output[0])}


def write_predictions(path: Path, rows: list[dict[str, Any]]) -> Path:
    """predictions.csv: one row per slide, columns in first-seen order."""
    return write_csv(path, rows)


def predict(
    inputs: Sequence[str | Path],
    model: str | Path,
    out: str | Path,
    *,
    revision: str | None = None,
    mpp: float | None = None,
    workers: int = 0,
    device: str = "cpu",
    progress: bool = True,
    shard: str | None = None,
) -> PredictResult:
    """Predict every slide in ``inputs`` (files or folders) with ``model`` (folder or Hub repo id).

    Slides that fail (unreadable, no tissue) are listed in ``failures``; the others are predicted.
    ``shard="I/N"`` predicts only shard I of N of the slides, into ``predictions-I-of-N.csv``.
    """
    from fusecpath.checkpoint.folder import read_checkpoint
    from fusecpath.features.extract import extract, find_slides
    from fusecpath.features.store import feature_path, open_features
    from fusecpath.fusion import FusedModel, predict_slide
    from fusecpath.report.heatmap import write_geojson, write_heatmap
    from fusecpath.report.html import write_predict_index
    from fusecpath.shards import parse_shard, take_shard
    from fusecpath.slides import slide_id
    from fusecpath.training.tasks import Task

    state, config, directory = read_checkpoint(model, revision=revision)
    fms = check_fms(config)
    fused = FusedModel.from_checkpoint(state, config, directory)
    task = Task.from_config(config["task"])
    slides, missing = find_slides(inputs)
    slides = take_shard(slides, shard)
    if not slides:
        raise FusecpathError(
            f"no slide files in {', '.join(map(str, inputs))}" + (f" ({missing[0][1]})" if missing else "")
        )
    out = Path(out)
    heatmaps = out / "heatmaps"
    heatmaps.mkdir(parents=True, exist_ok=True)
    names = [fm["name"] for fm in fms]
    extracted = extract(
        slides, names, out / "features", mpp=mpp, workers=workers, device=device, progress=progress
    )
    result = PredictResult(str(model), out, None, failures=[*missing, *extracted.failures])
    failed = {Path(s).name for s, _ in result.failures}
    for path in slides:
        sid = slide_id(path)
        if path.name in failed:
            continue
        feats = open_features(feature_path(out / "features", sid))
        for fm in fms:
            if feats.fingerprint(fm["name"]) != fm["fingerprint"]:
                raise ModelMismatchError(
                    f"{feats.path}: {fm['name']} features have fingerprint "
                    f"{feats.fingerprint(fm['name'])}, the model needs {fm['fingerprint']}"
                )
        pred = predict_slide(
            fused, {n: feats.patch(n) for n in names}, feats.coords, slide_id=sid, device=device
        )
        size = float(feats.attrs.get("patch_size_level0_exact") or feats.attrs["patch_size_level0"])
        attention = np.nan_to_num(pred.attention, nan=0.0)  # patches never drawn into a bag weigh nothing
        columns = prediction_columns(task, pred.output)
        summary = ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in columns.items()
        )
        png = write_heatmap(heatmaps / f"{sid}.png", path, feats.coords, size, attention, f"{sid}: {summary}")
        geojson = write_geojson(
            heatmaps / f"{sid}.geojson",
            feats.coords,
            size,
            {"attention": attention, "cluster": pred.clusters.astype(float)},
            sid,
        )
        result.rows.append(
            {
                "slide_id": sid,
                **columns,
                "patches": len(feats),
                "bags": len(pred.bag_outputs),
                "slide": str(path),
                "heatmap": str(png),
                "geojson": str(geojson),
            }
        )
    if result.rows:
        name = "predictions.csv" if shard is None else "predictions-{}-of-{}.csv".format(*parse_shard(shard))
        result.predictions = write_predictions(out / name, result.rows)
        index = "index.html" if shard is None else "index-{}-of-{}.html".format(*parse_shard(shard))
        write_predict_index(out / index, result.rows, str(model), result.failures)
    return result
