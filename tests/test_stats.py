"""The corrected resampled t interval (Nadeau & Bengio) against a hand-worked example."""

from __future__ import annotations

import math

import pytest

from fusecpath.training.stats import corrected_interval, paired_difference


def test_paired_interval_matches_the_worked_example():
    # fusecpath and a baseline over 2 seeds x 3 folds; differences 0.02, 0.05, -0.01, 0.04, 0.00, 0.03.
    ours = [0.82, 0.85, 0.79, 0.84, 0.80, 0.83]
    theirs = [0.80, 0.80, 0.80, 0.80, 0.80, 0.80]
    # By hand: mean 0.13 / 6 = 0.0216667; squared deviations sum to 0.00268333, so s^2 = 0.000536667;
    # 3-fold CV tests on 1/3 and trains on 2/3 of the slides: n_test / n_train = 0.5;
    # corrected variance (1/6 + 0.5) s^2 = 0.000357778, se 0.0189150; t(0.975, 5) = 2.570582;
    # half-width 0.0486226: [-0.0269559, 0.0702893].
    iv = paired_difference(ours, theirs, test_train_ratio=0.5)
    assert iv.mean == pytest.approx(0.0216667, abs=1e-6)
    assert iv.std == pytest.approx(math.sqrt(0.000536667), abs=1e-6)
    assert (iv.lo, iv.hi) == (pytest.approx(-0.0269559, abs=1e-6), pytest.approx(0.0702893, abs=1e-6))
    assert iv.n == 6 and not iv.excludes_zero
    # without the correction (ratio 0) the same differences would look significant at a narrower width
    naive = paired_difference(ours, theirs, test_train_ratio=0.0)
    assert naive.hi - naive.lo < iv.hi - iv.lo


def test_interval_edge_cases():
    assert corrected_interval([0.7], 0.25).lo == corrected_interval([0.7], 0.25).hi == 0.7
    assert math.isnan(corrected_interval([], 0.25).mean)
    # NaN folds (a fold with one class has no AUROC) are left out
    assert corrected_interval([0.6, float("nan"), 0.8], 0.25).n == 2
    strong = corrected_interval([0.1, 0.11, 0.12, 0.1, 0.11, 0.12], 0.25)
    assert strong.excludes_zero
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1.0], [1.0, 2.0], 0.25)
