"""The fused model and the baselines as training-loop methods, all on the same cohort and folds.

- ``FuseCPathMethod``: clustered bags -> CR²T -> ABMIL, plus slide-FM teachers (distillation); with no
  teachers it is the ablation "FuseCPath without distillation". Slides are scored by
  ``fusion.predict.score_bags``, the same function ``fusecpath predict`` uses.
  With ``regions="random"`` the K regions are random equal groups of patches instead of multi-view
  clusters: the ablation ``fusecpath-random-bags`` and, with no teachers, R²T-MIL (``r2tmil-*``).
- the MIL baselines (ABMIL, TransMIL, CLAM, DSMIL) are in ``fusion/baselines.py``;
- ``LinearMethod``: a linear / logistic / Cox head on one vector a slide (mean-pooled patch features,
  or a slide FM's embedding: the linear probe).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fusecpath.fusion.bags import slot_shares
from fusecpath.fusion.model import FusedModel, LinearModel
from fusecpath.fusion.predict import score_bags, slide_bags
from fusecpath.training.data import Cohort
from fusecpath.training.tasks import Task

DISTILL_LAMBDA = 0.5


def shuffled_pairs(
    n_slides: int, n_each: int, epoch: int, batch_size: int, seed: int
) -> Iterator[np.ndarray]:
    """One epoch's (slide position, draw) pairs, every slide drawn ``n_each`` times, in a shuffled order
    fixed by (seed, epoch), as (batch, 2) chunks."""
    pairs = np.stack(np.meshgrid(np.arange(n_slides), np.arange(n_each), indexing="ij"), -1).reshape(-1, 2)
    pairs = pairs[np.random.default_rng([seed, epoch]).permutation(len(pairs))]
    for start in range(0, len(pairs), batch_size):
        yield pairs[start : start + batch_size]


@dataclass
class FuseCPathMethod:
    cohort: Cohort
    config: dict[str, Any]  # FusedModel config less n_outputs/task (completed in build)
    n_bags: int = 50
    per_cluster: int = 10
    seed: int = 0
    lam: float = DISTILL_LAMBDA
    teacher_ce: bool = False  # True: teachers also get the task loss; False: only KL, as the official code
    name: str = "fusecpath"
    regions: str = "clusters"  # "clusters" (multi-view clustering) or "random" (random equal groups)

    def __post_init__(self) -> None:
        # the bags as built here go into the model's config, so a checkpoint rebuilds them (slide_bags)
        bags = {"per_cluster": self.per_cluster, "n_bags": self.n_bags, "seed": self.seed}
        self.config = {**self.config, "bags": bags}
        if self.teacher_ce:
            self.config["distillation"] = {**self.config.get("distillation", {}), "teacher_ce": True}
        self.patch_fms = [fm["name"] for fm in self.config["patch_fms"]]
        self.slide_fms = [fm["name"] for fm in self.config.get("slide_fms", [])]
        self.n_clusters = int(self.config["clustering"]["n_clusters"])
        self._feats = {s: d.concat(self.patch_fms) for s, d in self.cohort.items()}
        regions = {s: self._regions(s, d) for s, d in self.cohort.items()}
        self._bags = {s: slide_bags(self.config, r, s) for s, r in regions.items()}
        self._shares = {s: slot_shares(r, self.n_clusters).astype(np.float32) for s, r in regions.items()}

    def _regions(self, slide_id: str, data) -> np.ndarray:
        if self.regions == "clusters":
            return data.clusters
        from fusecpath.fusion.baselines import random_regions

        return random_regions(len(data.coords), self.n_clusters, self.seed, slide_id)

    def build(self, task: Task) -> FusedModel:
        return FusedModel({**self.config, "task": task.to_config(), "n_outputs": task.n_outputs})

    def prepare(self, model: FusedModel, slide_ids: Sequence[str]) -> None:
        model.norm.fit(torch.as_tensor(np.concatenate([self._feats[s] for s in slide_ids])))
        for norm, fm in zip(model.teacher_norms, self.slide_fms, strict=True):
            norm.fit(torch.as_tensor(np.stack([self.cohort[s].slide[fm] for s in slide_ids])))

    def _teachers(self, ids: Sequence[str]) -> list[torch.Tensor]:
        return [
            torch.as_tensor(np.stack([self.cohort[s].slide[fm] for s in ids]), dtype=torch.float32)
            for fm in self.slide_fms
        ]

    def bag_tensor(self, slide_id: str, bag_rows: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(self._feats[slide_id][bag_rows])

    def batches(
        self, slide_ids: Sequence[str], epoch: int, batch_size: int, seed: int
    ) -> Iterator[tuple[Any, np.ndarray]]:
        for chunk in shuffled_pairs(len(slide_ids), self.n_bags, epoch, batch_size, seed):
            ids = [slide_ids[i] for i in chunk[:, 0]]
            bags = torch.stack(
                [self.bag_tensor(s, self._bags[s][b]) for s, b in zip(ids, chunk[:, 1], strict=True)]
            )
            shares = torch.as_tensor(np.stack([self._shares[s] for s in ids]))
            yield (bags, self._teachers(ids), shares), chunk[:, 0]

    def loss(self, model: FusedModel, inputs: Any, y: torch.Tensor, task: Task) -> torch.Tensor:
        """lam * task(student) + (1 - lam) * mean_i distill(teacher_i, student); with ``teacher_ce`` the
        task term is task(student) + mean_i task(teacher_i)."""
        bags, teachers, shares = inputs
        out = model(bags, teachers, shares)
        task_loss = task.loss(out.logits, y)
        if not out.teacher_logits:
            return task_loss
        if self.teacher_ce:
            task_loss = task_loss + torch.stack([task.loss(t, y) for t in out.teacher_logits]).mean()
        distill = torch.stack([task.distill(t, out.logits) for t in out.teacher_logits]).mean()
        return self.lam * task_loss + (1 - self.lam) * distill

    def score(self, model: FusedModel, slide_id: str, device: str) -> np.ndarray:
        return score_bags(model, self._feats[slide_id], self._bags[slide_id], self._shares[slide_id], device)[
            0
        ]


@dataclass
class LinearMethod:
    vectors: dict[str, np.ndarray]  # slide id -> (D,)
    name: str
    n_draws: int = 10  # gradient steps per slide and epoch (the inputs do not change between draws)

    def build(self, task: Task) -> LinearModel:
        return LinearModel(len(next(iter(self.vectors.values()))), task.n_outputs)

    def prepare(self, model: LinearModel, slide_ids: Sequence[str]) -> None:
        model.norm.fit(torch.as_tensor(np.stack([self.vectors[s] for s in slide_ids])))

    def batches(
        self, slide_ids: Sequence[str], epoch: int, batch_size: int, seed: int
    ) -> Iterator[tuple[Any, np.ndarray]]:
        for chunk in shuffled_pairs(len(slide_ids), self.n_draws, epoch, batch_size, seed):
            pos = chunk[:, 0]
            yield (
                torch.as_tensor(np.stack([self.vectors[slide_ids[i]] for i in pos]), dtype=torch.float32),
                pos,
            )

    def loss(self, model: LinearModel, inputs: Any, y: torch.Tensor, task: Task) -> torch.Tensor:
        return task.loss(model(inputs), y)

    def score(self, model: LinearModel, slide_id: str, device: str) -> np.ndarray:
        return (
            model(torch.as_tensor(self.vectors[slide_id], dtype=torch.float32)[None].to(device)).cpu().numpy()
        )


def mean_vectors(cohort: Cohort, fms: list[str]) -> dict[str, np.ndarray]:
    return {s: d.concat(fms).mean(0) for s, d in cohort.items()}


def slide_vectors(cohort: Cohort, fm: str) -> dict[str, np.ndarray]:
    return {s: d.slide[fm].astype(np.float32) for s, d in cohort.items()}
