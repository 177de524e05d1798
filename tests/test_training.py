"""Metrics against scikit-learn / reference formulas, Cox loss, patient-level folds, labels.csv checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from fusecpath.training import metrics as M
from fusecpath.training.folds import inner_split, kfold, patient_of, strata
from fusecpath.training.labels import LabelsError, read_labels
from fusecpath.training.tasks import Task, cox_loss

RNG = np.random.default_rng(0)


def test_auroc_matches_sklearn_with_ties():
    y = RNG.integers(0, 2, 200)
    score = np.round(RNG.standard_normal(200) + y, 1)  # rounding makes ties
    assert M.auroc_binary(y, score) == pytest.approx(roc_auc_score(y, score))
    probs = RNG.dirichlet(np.ones(4), size=300)
    y4 = RNG.integers(0, 4, 300)
    assert M.auroc(y4, probs) == pytest.approx(roc_auc_score(y4, probs, multi_class="ovr", average="macro"))


def test_balanced_accuracy_and_f1_match_sklearn():
    y, pred = RNG.integers(0, 3, 100), RNG.integers(0, 3, 100)
    assert M.balanced_accuracy(y, pred) == pytest.approx(balanced_accuracy_score(y, pred))
    assert M.f1(y, pred, 3) == pytest.approx(f1_score(y, pred, average="macro"))
    yb, pb = RNG.integers(0, 2, 50), RNG.integers(0, 2, 50)
    assert M.f1(yb, pb, 2) == pytest.approx(f1_score(yb, pb))


def test_pearson_matches_numpy():
    y = RNG.standard_normal((40, 2))
    pred = y + RNG.standard_normal((40, 2))
    expected = np.mean([np.corrcoef(y[:, j], pred[:, j])[0, 1] for j in range(2)])
    assert M.pearson(y, pred) == pytest.approx(expected)


def _harrell_brute(time, event, risk):
    num = den = 0.0
    for i, j in itertools.permutations(range(len(time)), 2):
        if event[i] and time[i] < time[j]:
            den += 1
            num += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    return num / den


def test_c_index_matches_brute_force_definition():
    time = RNG.integers(1, 30, 60).astype(float)  # ties in time
    event = RNG.integers(0, 2, 60)
    risk = np.round(RNG.standard_normal(60), 1)  # ties in risk
    assert M.concordance_index(time, event, risk) == pytest.approx(_harrell_brute(time, event, risk))
    assert M.concordance_index([1, 2, 3], [1, 1, 1], [3, 2, 1]) == 1.0


def test_cox_loss_matches_breslow_formula():
    time = torch.tensor([5.0, 3.0, 3.0, 8.0, 1.0])
    event = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0])
    risk = torch.tensor([0.2, -0.5, 1.0, 0.3, 0.8])
    expected = 0.0
    for i in range(5):
        if event[i]:
            at_risk = time >= time[i]
            expected -= risk[i] - torch.logsumexp(risk[at_risk], 0)
    assert cox_loss(risk, time, event).item() == pytest.approx((expected / event.sum()).item(), rel=1e-5)


def test_folds_never_split_a_patient_and_cover_every_slide():
    patients = np.repeat([f"TCGA-AA-{i:04d}" for i in range(30)], 2)
    y = np.repeat(RNG.integers(0, 2, 30), 2)
    folds = kfold(y, patients, 5, seed=0)
    tested = np.concatenate([te for _, te in folds])
    assert sorted(tested) == list(range(60))
    for train, test in folds:
        assert not set(patients[train]) & set(patients[test])
        fit, val = inner_split(y[train], patients[train], seed=0)
        assert not set(patients[train][fit]) & set(patients[train][val])
        assert set(y[test]) == {0, 1}
    again = kfold(y, patients, 5, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))


def test_patient_of_tcga_slide_and_regression_strata():
    assert patient_of("TCGA-A1-A0SB-01Z-00-DX1.svs") == "TCGA-A1-A0SB"
    assert set(strata("regression", RNG.standard_normal(40))) == {0, 1, 2, 3}


def _csv(tmp_path, text):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return path


GOOD = "slide_id,label\n" + "".join(f"P{i:02d},{'ab'[i % 2]}\n" for i in range(10))


@pytest.mark.parametrize(
    "text,kind,match",
    [
        (GOOD + "P00,a\n", "classification", "duplicate slide_id 'P00'"),
        (GOOD.replace("P03,b", "P03,"), "classification", "no value in column 'label'"),
        (
            "slide_id,label\n" + "".join(f"P{i:02d},{'ab'[i % 2] if i else 'c'}\n" for i in range(11)),
            "classification",
            "class 'c' has 1 patients",
        ),
        (
            "slide_id,label,patient_id\nS1,a,X\nS2,b,X\n"
            + "".join(f"P{i:02d},{'ab'[i % 2]},P{i}\n" for i in range(10)),
            "classification",
            "patient 'X' has slides with different labels",
        ),
        (
            "slide_id,time,event\n" + "".join(f"P{i:02d},{i + 1},1\n" for i in range(9)) + "P09,nan,1\n",
            "survival",
            "no value in column 'time'",
        ),
        (
            "slide_id,time,event\n" + "".join(f"P{i:02d},{i + 1},2\n" for i in range(10)),
            "survival",
            "event must be 1",
        ),
        (
            "slide_id,score\n" + "".join(f"P{i:02d},{i}\n" for i in range(9)) + "P09,inf\n",
            "regression",
            "finite number",
        ),
        ("id,label\nP1,a\n", "classification", "needs a slide_id column"),
    ],
)
def test_labels_errors_are_one_clear_line(tmp_path, text, kind, match):
    with pytest.raises(LabelsError, match=match) as info:
        read_labels(_csv(tmp_path, text), kind, n_folds=5)
    assert "\n" not in str(info.value)


def test_labels_missing_slides_and_unknown_class(tmp_path):
    path = _csv(tmp_path, GOOD)
    with pytest.raises(LabelsError, match="10 slides have no features"):
        read_labels(path, "classification", available={"Z"}, n_folds=5)
    with pytest.raises(LabelsError, match="unknown class 'b'"):
        read_labels(path, "classification", n_folds=5, classes=["a", "c"])


def test_labels_parse_each_task(tmp_path):
    lab = read_labels(_csv(tmp_path, GOOD), "classification", n_folds=5)
    assert lab.classes == ["a", "b"] and list(lab.y[:3]) == [0, 1, 0]
    reg = read_labels(
        _csv(tmp_path, "slide_id,g1,g2\n" + "".join(f"P{i},{i},{-i}\n" for i in range(6))),
        "regression",
        n_folds=5,
    )
    assert reg.targets == ["g1", "g2"] and reg.y.shape == (6, 2)
    surv = read_labels(
        _csv(tmp_path, "slide_id,time,event\n" + "".join(f"P{i},{i + 1},{i % 2}\n" for i in range(6))),
        "survival",
        n_folds=5,
    )
    assert surv.y.shape == (6, 2)
    assert Task("survival").n_outputs == 1 and Task("regression", targets=["g1", "g2"]).n_outputs == 2


def test_roc_points_and_kaplan_meier():
    from fusecpath.report.plots import kaplan_meier, roc_points

    y = RNG.integers(0, 2, 80)
    score = np.round(RNG.standard_normal(80) + y, 1)
    fpr, tpr = roc_points(y, score)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc_score(y, score))
    t, s = kaplan_meier(np.array([1.0, 2, 2, 3, 4]), np.array([1, 1, 0, 1, 0]))
    assert list(t) == [0, 1, 2, 3] and s == pytest.approx([1, 0.8, 0.6, 0.3])
