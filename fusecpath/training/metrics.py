"""Evaluation metrics, from maintained libraries: scikit-learn (AUROC, balanced accuracy, F1, MSE),
scipy (Pearson r) and lifelines (Harrell's C-index).

Each returns NaN where the metric is undefined on the data given (one class only, a constant column,
no comparable pair) instead of raising, so a small test fold never stops a cross-validation.
"""

from __future__ import annotations

import warnings

import numpy as np


def auroc(y: np.ndarray, probs: np.ndarray, positive: int = 1) -> float:
    """Binary: AUROC of class ``positive``; multi-class: mean one-vs-rest AUROC over the classes in ``y``."""
    from sklearn.metrics import roc_auc_score

    y, probs = np.asarray(y), np.asarray(probs)
    classes = [positive] if probs.shape[1] == 2 else range(probs.shape[1])
    scores = [roc_auc_score(y == c, probs[:, c]) for c in classes if 0 < np.sum(y == c) < len(y)]
    return float(np.mean(scores)) if scores else float("nan")


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y``."""
    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": expected in small folds
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y, pred))


def f1(y: np.ndarray, pred: np.ndarray, n_classes: int, positive: int = 1) -> float:
    """Binary: F1 of class ``positive``; multi-class: macro F1 over the classes in ``y`` or ``pred``."""
    from sklearn.metrics import f1_score

    if n_classes == 2:
        return float(f1_score(y, pred, labels=[0, 1], pos_label=positive, average="binary", zero_division=0))
    return float(f1_score(y, pred, average="macro", zero_division=0))


def mse(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean squared error over every target column (equal weights)."""
    from sklearn.metrics import mean_squared_error

    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    return float(mean_squared_error(y.reshape(len(y), -1), pred.reshape(len(pred), -1)))


def pearson(y: np.ndarray, pred: np.ndarray) -> float:
    """Pearson r, averaged over target columns (a constant column gives NaN and is left out)."""
    from scipy.stats import ConstantInputWarning, pearsonr

    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    y, pred = y.reshape(len(y), -1), pred.reshape(len(pred), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        rs = np.array([pearsonr(a, b).statistic for a, b in zip(y.T, pred.T, strict=True)], dtype=float)
    return float(np.nanmean(rs)) if np.isfinite(rs).any() else float("nan")


def concordance_index(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's C of a risk score (higher risk = earlier event): over pairs where the earlier time is an
    observed event (or an event tied with a censored time), the share where that subject has the higher risk;
    ties in risk count 1/2. NaN without a comparable pair."""
    from lifelines.utils import concordance_index as lifelines_c

    time, event, risk = (np.asarray(a, dtype=float) for a in (time, event, risk))
    try:  # lifelines scores survival (higher = later event): a risk is its negation
        return float(lifelines_c(time, -risk, event))
    except ZeroDivisionError:  # lifelines' signal for "no admissible pairs"
        return float("nan")
