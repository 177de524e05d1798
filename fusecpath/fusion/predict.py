"""Score one slide with a fused model: cluster, build every bag, score them, average.

Used by cross-validation's final model and by ``fusecpath predict`` (which also draws heatmaps from
the per-patch attention returned here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fusecpath.fusion.bags import make_bags
from fusecpath.fusion.cluster import multiview_cluster
from fusecpath.fusion.methods import SCORE_CHUNK
from fusecpath.fusion.model import FusedModel
from fusecpath.training.tasks import Task


@dataclass
class SlidePrediction:
    output: np.ndarray  # decoded prediction: class probabilities, target values, or (1,) risk
    bag_outputs: np.ndarray  # (n_bags, ...) decoded per bag
    attention: (
        np.ndarray
    )  # (N,) mean ABMIL weight of each patch over the bags it was drawn in (NaN: never drawn)
    clusters: np.ndarray  # (N,) cluster label of each patch


def task_of(model: FusedModel) -> Task:
    return Task.from_config(model.config["task"])


@torch.no_grad()
def predict_slide(
    model: FusedModel,
    patch_features: dict[str, np.ndarray],
    coords: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    slide_id: str = "",
    device: str = "cpu",
) -> SlidePrediction:
    """Predict one slide from its patch features (FM name -> (N, D)); ``coords`` are not needed by
    the model (clusters come from the features) and are accepted for callers that keep them together."""
    cfg = model.config
    fms = [fm["name"] for fm in cfg["patch_fms"]]
    if missing := [fm for fm in fms if fm not in patch_features]:
        raise ValueError(f"the model fuses {', '.join(fms)}; no features given for {', '.join(missing)}")
    views = [np.asarray(patch_features[fm], dtype=np.float32) for fm in fms]
    n = len(views[0])
    clustering, bag_cfg = cfg["clustering"], cfg["bags"]
    k, seed = int(clustering["n_clusters"]), int(clustering.get("seed", 0))
    if clusters is None:
        clusters = multiview_cluster(views, k, seed)
    bags = make_bags(clusters, k, int(bag_cfg["n_bags"]), int(bag_cfg["per_cluster"]), seed, key=slide_id)
    feats = np.concatenate(views, axis=1)
    model.eval().to(device)
    logits, weights = [], []
    for i in range(0, len(bags), SCORE_CHUNK):
        out = model(torch.as_tensor(feats[bags[i : i + SCORE_CHUNK]]).to(device))
        logits.append(out.logits.float().cpu().numpy())
        weights.append(out.attention.float().cpu().numpy().reshape(-1))
    decoded = task_of(model).decode(np.concatenate(logits))
    weights = np.concatenate(weights)
    total = np.bincount(bags.reshape(-1), weights=weights, minlength=n)
    count = np.bincount(bags.reshape(-1), minlength=n)
    attention = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return SlidePrediction(decoded.mean(0), decoded, attention, clusters)
