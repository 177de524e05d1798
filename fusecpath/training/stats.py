"""Intervals over repeated cross-validation: the corrected resampled t-test (Nadeau & Bengio, 2003).

Scores from the folds of repeated k-fold cross-validation are not independent: every training set
overlaps every other. Nadeau & Bengio's correction widens the naive variance of the mean of J = seeds x
folds scores from sigma^2 / J to (1 / J + n_test / n_train) sigma^2 and uses Student's t with J - 1
degrees of freedom. The same interval is given for one method's score and, over (seed, fold) pairs, for
the paired difference between two methods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t


@dataclass(frozen=True)
class Interval:
    mean: float
    std: float  # sample standard deviation of the J values
    lo: float
    hi: float
    n: int  # J, the values that entered (finite ones)

    @property
    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0


def corrected_interval(values: Sequence[float], test_train_ratio: float, level: float = 0.95) -> Interval:
    """Mean of ``values`` with its Nadeau-Bengio corrected ``level`` interval; NaNs are left out.

    ``test_train_ratio`` is n_test / n_train of one fold (1 / (k - 1) for k-fold). One value gives an
    interval of zero width around it; none gives NaNs.
    """
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    n = len(arr)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(arr.mean())
    if n == 1:
        return Interval(mean, 0.0, mean, mean, 1)
    std = float(arr.std(ddof=1))
    half = float(student_t.ppf(0.5 + level / 2, n - 1)) * math.sqrt((1 / n + test_train_ratio) * std**2)
    return Interval(mean, std, mean - half, mean + half, n)


def paired_difference(
    a: Sequence[float], b: Sequence[float], test_train_ratio: float, level: float = 0.95
) -> Interval:
    """a - b over matched (seed, fold) pairs, with the corrected interval of its mean."""
    if len(a) != len(b):
        raise ValueError(f"paired scores need equal lengths, not {len(a)} and {len(b)}")
    return corrected_interval(np.asarray(a, float) - np.asarray(b, float), test_train_ratio, level)
