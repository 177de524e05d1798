"""Tasks: what a model outputs, its loss, the distillation term, and the metrics reported.

- classification (binary or multi-class): cross-entropy; AUROC, balanced accuracy, F1 (binary: of the
  ``positive`` class; multi-class: macro);
  distillation = tau^2 * KL(teacher || student) on temperature-softened probabilities (tau = 3);
- regression (one or more targets, standardised on the training fold): MSE; MSE and Pearson r on the
  original scale; distillation = MSE between teacher and student outputs (the regression analogue, tau = 1);
- survival: Cox partial likelihood (Breslow ties) on a risk score; C-index; distillation = MSE of risks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from fusecpath.training import metrics as M

KINDS = ("classification", "regression", "survival")


@dataclass
class Task:
    kind: str
    classes: list[str] = field(default_factory=list)  # classification
    targets: list[str] = field(default_factory=list)  # regression targets
    tau: float = 3.0
    positive: int = 1  # binary classification: index of the positive class in ``classes``
    # Training-fold target scaling (regression), set by fit_targets.
    y_mean: np.ndarray | None = None
    y_std: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"task must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.kind != "classification":
            self.tau = 1.0

    @property
    def n_outputs(self) -> int:
        return {"classification": len(self.classes), "regression": len(self.targets), "survival": 1}[
            self.kind
        ]

    @property
    def selection_metric(self) -> str:
        """The validation metric that picks the best epoch (higher is better)."""
        return {"classification": "auroc", "regression": "pearson", "survival": "c_index"}[self.kind]

    @property
    def metric_names(self) -> list[str]:
        return {
            "classification": ["auroc", "balanced_accuracy", "f1"],
            "regression": ["mse", "pearson"],
            "survival": ["c_index"],
        }[self.kind]

    def to_config(self) -> dict:
        scaling = (
            {} if self.y_mean is None else {"y_mean": self.y_mean.tolist(), "y_std": self.y_std.tolist()}
        )
        return {
            "kind": self.kind,
            "classes": self.classes,
            "targets": self.targets,
            "tau": self.tau,
            **({"positive": self.positive} if self.kind == "classification" else {}),
            **scaling,
        }

    @classmethod
    def from_config(cls, config: dict) -> Task:
        task = cls(config["kind"], list(config.get("classes", [])), list(config.get("targets", [])))
        task.positive = int(config.get("positive", 1))  # checkpoints from before the option: class 1
        if "y_mean" in config:
            task.y_mean, task.y_std = np.asarray(config["y_mean"]), np.asarray(config["y_std"])
        return task

    def fit_targets(self, y: np.ndarray) -> None:
        if self.kind == "regression":
            self.y_mean, self.y_std = y.mean(0), np.where(y.std(0) > 0, y.std(0), 1.0)

    def target_tensor(self, y: np.ndarray) -> torch.Tensor:
        if self.kind == "classification":
            return torch.as_tensor(y, dtype=torch.long)
        if self.kind == "regression":
            return torch.as_tensor((y - self.y_mean) / self.y_std, dtype=torch.float32)
        return torch.as_tensor(y, dtype=torch.float32)  # (B, 2): time, event

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.kind == "classification":
            return F.cross_entropy(out, y)
        if self.kind == "regression":
            return F.mse_loss(out, y)
        return cox_loss(out[:, 0], y[:, 0], y[:, 1])

    def distill(self, teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
        """tau^2 KL(teacher || student) for classification, MSE otherwise; gradients reach both."""
        if self.kind == "classification":
            t = self.tau
            log_p_student = F.log_softmax(student / t, -1)
            log_p_teacher = F.log_softmax(teacher / t, -1)
            return t * t * F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")
        return F.mse_loss(student, teacher)

    def decode(self, out: np.ndarray) -> np.ndarray:
        """Raw model outputs -> probabilities / original-scale values / risk scores."""
        if self.kind == "classification":
            e = np.exp(out - out.max(1, keepdims=True))
            return e / e.sum(1, keepdims=True)
        if self.kind == "regression":
            return out * self.y_std + self.y_mean
        return out[:, 0]

    def evaluate(self, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
        """Metrics of decoded predictions against labels."""
        if self.kind == "classification":
            hard = pred.argmax(1)
            return {
                "auroc": M.auroc(y, pred, self.positive),
                "balanced_accuracy": M.balanced_accuracy(y, hard),
                "f1": M.f1(y, hard, len(self.classes), self.positive),
            }
        if self.kind == "regression":
            return {"mse": M.mse(y, pred), "pearson": M.pearson(y, pred)}
        return {"c_index": M.concordance_index(y[:, 0], y[:, 1], pred)}


def cox_loss(risk: torch.Tensor, time: torch.Tensor, event: torch.Tensor) -> torch.Tensor:
    """Negative Cox partial log-likelihood (Breslow), mean over events; 0 if the batch has no event."""
    order = torch.argsort(time, descending=True)
    risk, time, event = risk[order], time[order], event[order]
    log_cum = torch.logcumsumexp(risk, 0)
    # Breslow ties: every subject with the same time shares the risk set of the last one among them.
    _, inverse, counts = torch.unique_consecutive(time, return_inverse=True, return_counts=True)
    last = torch.cumsum(counts, 0) - 1
    log_risk_set = log_cum[last[inverse]]
    n_events = event.sum()
    if n_events == 0:
        return risk.sum() * 0.0
    return -((risk - log_risk_set) * event).sum() / n_events
