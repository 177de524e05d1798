"""The one scoring path of a fused model: a slide's bags -> per-bag logits and attention.

``score_bags`` is called by ``FuseCPathMethod.score`` (validation, out-of-fold predictions, the final
model's selection) and by ``predict_slide`` (``fusecpath predict``); ``slide_bags`` builds a slide's
bags from the model's config the way the training method built them, so a saved checkpoint scores a
slide exactly as cross-validation scored it (tests/test_scoring.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fusecpath.fusion.bags import make_bags, slot_shares
from fusecpath.fusion.cluster import multiview_cluster
from fusecpath.fusion.model import FusedModel
from fusecpath.training.tasks import Task

SCORE_CHUNK = 16  # bags scored at once (memory)


@dataclass
class SlidePrediction:
    output: np.ndarray  # decoded prediction: class probabilities, target values, or (1,) risk
    bag_outputs: np.ndarray  # (n_bags, ...) decoded per bag
    attention: np.ndarray  # (N,) mean ABMIL weight of each patch over the bags it was in (NaN: never)
    clusters: np.ndarray  # (N,) cluster label of each patch


def task_of(model: FusedModel) -> Task:
    return Task.from_config(model.config["task"])


def slide_bags(config: dict[str, Any], clusters: np.ndarray, slide_id: str) -> np.ndarray:
    """(n_bags, K, N_K) patch indices of a slide, from a fused config's clustering and bag settings."""
    k = int(config["clustering"]["n_clusters"])
    bags = config["bags"]
    seed = int(bags.get("seed", config["clustering"].get("seed", 0)))
    return make_bags(clusters, k, int(bags["n_bags"]), int(bags["per_cluster"]), seed, key=slide_id)


@torch.no_grad()
def score_bags(
    model: FusedModel, features: np.ndarray, bags: np.ndarray, shares: np.ndarray, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """(n_bags, n_outputs) logits and (n_bags, K * N_K) ABMIL weights of one slide's bags, ``features``
    being its (N, D) concatenated patch features and ``shares`` (K,) its slots' shares of the slide
    (``bags.slot_shares``). The caller chooses train/eval mode."""
    logits, weights = [], []
    slot = torch.as_tensor(shares, dtype=torch.float32, device=device)[None]
    for i in range(0, len(bags), SCORE_CHUNK):
        chunk = torch.as_tensor(features[bags[i : i + SCORE_CHUNK]]).to(device)
        out = model(chunk, shares=slot.expand(len(chunk), -1))
        logits.append(out.logits.float().cpu().numpy())
        weights.append(out.attention.float().cpu().numpy())
    return np.concatenate(logits), np.concatenate(weights)


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
    if clusters is None:
        clustering = cfg["clustering"]
        clusters = multiview_cluster(views, int(clustering["n_clusters"]), int(clustering.get("seed", 0)))
    bags = slide_bags(cfg, clusters, slide_id)
    model.eval().to(device)
    shares = slot_shares(clusters, int(cfg["clustering"]["n_clusters"]))
    logits, weights = score_bags(model, np.concatenate(views, axis=1), bags, shares, device)
    decoded = task_of(model).decode(logits)
    total = np.bincount(bags.reshape(-1), weights=weights.reshape(-1), minlength=n)
    count = np.bincount(bags.reshape(-1), minlength=n)
    attention = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return SlidePrediction(decoded.mean(0), decoded, attention, clusters)
