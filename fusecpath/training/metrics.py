"""Evaluation metrics: AUROC, balanced accuracy, F1, MSE, Pearson r, Harrell's C-index."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auroc_binary(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties); NaN if one class is absent."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(score, dtype=float))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auroc(y: np.ndarray, probs: np.ndarray) -> float:
    """Binary: AUROC of the positive class (column 1); multi-class: macro one-vs-rest AUROC."""
    probs = np.asarray(probs)
    if probs.shape[1] == 2:
        return auroc_binary(y == 1, probs[:, 1])
    per_class = [auroc_binary(y == c, probs[:, c]) for c in range(probs.shape[1])]
    return float(np.nanmean(per_class)) if not np.all(np.isnan(per_class)) else float("nan")


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in y."""
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Binary: F1 of class 1; multi-class: macro F1 over the classes present in y or pred."""
    classes = [1] if n_classes == 2 else np.union1d(np.unique(y), np.unique(pred))
    scores = []
    for c in classes:
        tp = np.sum((pred == c) & (y == c))
        denom = np.sum(pred == c) + np.sum(y == c)
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def pearson(y: np.ndarray, pred: np.ndarray) -> float:
    """Pearson r, averaged over target columns (NaN for a constant column)."""
    y, pred = np.atleast_2d(y.T).T, np.atleast_2d(pred.T).T
    rs = []
    for a, b in zip(y.T, pred.T, strict=True):
        a, b = a - a.mean(), b - b.mean()
        denom = np.sqrt((a * a).sum() * (b * b).sum())
        rs.append((a * b).sum() / denom if denom > 0 else np.nan)
    return float(np.nanmean(rs)) if not np.all(np.isnan(rs)) else float("nan")


def concordance_index(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's C: over pairs where the earlier time is an event, the share where that subject has the
    higher risk (ties in risk count 1/2; pairs with equal times are not comparable)."""
    time, event, risk = (np.asarray(a, dtype=float) for a in (time, event, risk))
    order = np.argsort(time, kind="stable")
    time, event, risk = time[order], event[order].astype(bool), risk[order]
    concordant = comparable = 0.0
    for i in np.flatnonzero(event):
        later = time > time[i]
        comparable += later.sum()
        concordant += (risk[i] > risk[later]).sum() + 0.5 * (risk[i] == risk[later]).sum()
    return float(concordant / comparable) if comparable else float("nan")
