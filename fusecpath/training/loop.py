"""The training loop shared by the fused model and every baseline.

A *method* says how to build its model, how to turn slides into training batches, its loss and how to
score one slide; this loop trains on a fold's fit split, scores the validation split after each epoch,
keeps the best epoch's weights (validation metric, then validation loss) and never sees the test fold.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from fusecpath.training.distributed import Dist
from fusecpath.training.tasks import Task


@dataclass
class TrainConfig:
    """Paper defaults: SGD lr 1e-4, momentum 0.9, weight decay 5e-5, cosine to 0.01 lr, batch 64 bags."""

    epochs: int = 30
    optimizer: str = "sgd"  # "sgd" (paper) or "adamw"
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 5e-5
    min_lr_ratio: float = 0.01
    batch_size: int = 64
    seed: int = 0
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Method(Protocol):
    name: str

    def build(self, task: Task) -> nn.Module: ...

    def prepare(self, model: nn.Module, slide_ids: Sequence[str]) -> None:
        """Fit what is fitted on training data only (feature standardisation)."""

    def batches(
        self, slide_ids: Sequence[str], epoch: int, batch_size: int, seed: int
    ) -> Iterator[tuple[Any, np.ndarray]]:
        """(inputs, positions into slide_ids) per training batch."""

    def loss(self, model: nn.Module, inputs: Any, y: torch.Tensor, task: Task) -> torch.Tensor: ...

    def score(self, model: nn.Module, slide_id: str, device: str) -> np.ndarray:
        """Raw outputs (n_bags, n_outputs) of one slide; its prediction is the mean of their decodings."""


def to_device(inputs: Any, device: str) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(to_device(x, device) for x in inputs)
    if isinstance(inputs, dict):
        return {k: to_device(v, device) for k, v in inputs.items()}
    return inputs


def predict(
    method: Method, model: nn.Module, task: Task, slide_ids: Sequence[str], device: str
) -> np.ndarray:
    """Decoded slide predictions: the mean over each slide's bags of the decoded bag outputs."""
    model.eval()
    with torch.no_grad():
        return np.stack([task.decode(method.score(model, s, device)).mean(0) for s in slide_ids])


def _selection(task: Task, method: Method, model: nn.Module, ids: Sequence[str], y: np.ndarray, device: str):
    model.eval()
    with torch.no_grad():
        raw = [method.score(model, s, device) for s in ids]
        out = torch.as_tensor(np.stack([r.mean(0) for r in raw]), dtype=torch.float32)
        loss = float(task.loss(out, task.target_tensor(y)))
    pred = np.stack([task.decode(r).mean(0) for r in raw])
    metric = task.evaluate(y, pred)[task.selection_metric]
    return (metric if math.isfinite(metric) else -math.inf, -loss)


def batches_per_epoch(method: Method, ids: Sequence[str], batch_size: int, seed: int) -> int:
    """Batches in one epoch: from the method's draws a slide when it says them, else by counting."""
    draws = getattr(method, "n_bags", None) or getattr(method, "n_draws", None)
    if draws:
        return math.ceil(len(ids) * int(draws) / batch_size)
    return sum(1 for _ in method.batches(ids, 0, batch_size, seed))


def release_memory() -> None:
    """Hand freed heap pages back to the system (glibc): without it the resident size of a long run
    creeps up as differently sized batch tensors fragment the heap."""
    global _TRIM
    if _TRIM is None:
        try:
            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to do
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM: Any = None


def train(
    method: Method,
    task: Task,
    ids: Sequence[str],
    y: np.ndarray,
    val_ids: Sequence[str],
    val_y: np.ndarray,
    cfg: TrainConfig,
    dist: Dist | None = None,
    on_epoch: Callable[[int], None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train on (ids, y), pick the epoch by (val_ids, val_y); returns the best model and a log.

    With ``dist`` (torchrun), every rank trains the same model under DDP on its share of each batch.
    ``on_epoch(epoch)`` is called after each epoch (progress).
    """
    dist = dist or Dist()
    torch.manual_seed(cfg.seed)
    task.fit_targets(y)
    model = method.build(task)
    method.prepare(model, ids)
    model.to(cfg.device)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adamw', not {cfg.optimizer!r}")
    steps = max(1, cfg.epochs * batches_per_epoch(method, ids, cfg.batch_size, cfg.seed))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=cfg.lr * cfg.min_lr_ratio)
    targets = task.target_tensor(y)
    net = dist.wrap(model)
    best, best_state, best_epoch, history = None, None, -1, []
    for epoch in range(cfg.epochs):
        model.train()
        total, n = 0.0, 0
        for batch in method.batches(ids, epoch, cfg.batch_size, cfg.seed):
            inputs, pos = dist.batch_share(*batch)
            loss = method.loss(net, to_device(inputs, cfg.device), targets[pos].to(cfg.device), task)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, n = total + float(loss.detach()) * len(pos), n + len(pos)
        score = _selection(task, method, model, val_ids, val_y, cfg.device)
        history.append(
            {"epoch": epoch, "train_loss": total / max(n, 1), "val_metric": score[0], "val_loss": -score[1]}
        )
        if best is None or score > best:
            best, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        release_memory()
        if on_epoch is not None:
            on_epoch(epoch)
    model.load_state_dict(best_state)
    return model.eval(), {"best_epoch": best_epoch, "history": history}
