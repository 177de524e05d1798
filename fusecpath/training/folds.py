"""Patient-level k-fold splits, stratified where the task allows, and the inner validation split."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

TCGA_PATIENT_CHARS = 12


def patient_of(slide_id: str) -> str:
    """A TCGA slide id's patient (``TCGA-XX-XXXX``): its first 12 characters."""
    return slide_id[:TCGA_PATIENT_CHARS]


def strata(kind: str, y: np.ndarray) -> np.ndarray:
    """Labels to stratify on: the class, the event indicator (survival), quartiles of the first target."""
    if kind == "classification":
        return np.asarray(y)
    if kind == "survival":
        return np.asarray(y)[:, 1].astype(int)
    first = np.asarray(y, dtype=float).reshape(len(y), -1)[:, 0]
    edges = np.quantile(first, [0.25, 0.5, 0.75])
    return np.searchsorted(edges, first)


def kfold(strat: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, test) index pairs; no group (patient) is split; classes balanced across folds."""
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in splitter.split(np.zeros(len(strat)), strat, groups)]


def inner_split(
    strat: np.ndarray, groups: np.ndarray, seed: int, fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) indices within a training fold: about ``fraction`` of its patients for validation."""
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError("a training fold needs at least two patients to hold one out for validation")
    smallest = min(len(np.unique(groups[strat == s])) for s in np.unique(strat))
    k = int(max(2, min(round(1 / fraction), n_groups, smallest)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        fit, val = kfold(strat, groups, k, seed)[0]
    return fit, val
