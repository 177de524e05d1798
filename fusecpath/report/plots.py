"""Result plots of a fuse run (matplotlib, Agg backend): ROC curves, Kaplan-Meier curves, scatter."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusecpath.files import write_with


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate), from (0, 0) to (1, 1), ties taken together (scikit-learn)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(y, bool), np.asarray(score, float), drop_intermediate=False)
    return fpr, tpr


def kaplan_meier(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step points (times, survival) of the Kaplan-Meier estimate."""
    times = np.unique(time[event.astype(bool)])
    surv, s = [1.0], 1.0
    for t in times:
        at_risk = np.sum(time >= t)
        s *= 1 - np.sum((time == t) & event.astype(bool)) / at_risk
        surv.append(s)
    return np.r_[0, times], np.array(surv)


def _save(fig, path: Path) -> Path:
    return write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"), suffix=".png")


def plot_results(
    kind: str,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    metric: dict[str, float],
    path: Path,
    title: str = "",
) -> Path:
    """One figure for every method's pooled out-of-fold predictions.

    classification: ``curves[name] = (labels, positive-class scores)`` (one-vs-rest of class 1 if binary);
    regression: ``(true, predicted)`` of the first target; survival: ``((time, event), risk)``, drawn as
    Kaplan-Meier curves of the fused model's high- and low-risk halves.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    if kind == "classification":
        for name, (y, score) in curves.items():
            fpr, tpr = roc_points(y, score)
            ax.plot(
                fpr, tpr, lw=2.5 if name == "fusecpath" else 1.2, label=f"{name} (AUROC {metric[name]:.3f})"
            )
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate")
    elif kind == "regression":
        y, pred = curves["fusecpath"]
        ax.scatter(y, pred, s=12, alpha=0.7, label=f"fusecpath (r {metric['fusecpath']:.3f})")
        lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], "k:", lw=0.8)
        ax.set(xlabel="true", ylabel="predicted")
    else:
        (time, event), risk = curves["fusecpath"]
        high = risk > np.median(risk)
        for mask, label in ((high, "high risk"), (~high, "low risk")):
            t, s = kaplan_meier(time[mask], event[mask])
            ax.step(t, s, where="post", label=f"fusecpath {label} (n={mask.sum()})")
        ax.set(xlabel="time", ylabel="survival", ylim=(0, 1.02))
        ax.set_title(f"C-index {metric['fusecpath']:.3f}")
    ax.legend(fontsize=7, loc="lower right" if kind == "classification" else "best")
    if title:
        fig.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
