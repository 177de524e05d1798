"""Metrics against scikit-learn / reference formulas, Cox loss, patient-level folds, labels.csv checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from fusecpath.training import metrics as M
from fusecpath.training.folds import inner_split, kfold, patient_of, strata
from fusecpath.training.labels import LabelsError, read_labels
from fusecpath.training.tasks import Task, cox_loss

RNG = np.random.default_rng(0)


def test_auroc_of_the_positive_class_and_present_classes_only():
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])
    # class 1 scores 0.1, 0.4 (negatives) vs 0.3, 0.8: 3 of 4 pairs ordered -> 0.75; class 0 is the mirror
    assert M.auroc(y, probs, positive=1) == pytest.approx(0.75)
    assert M.auroc(y, probs, positive=0) == pytest.approx(0.75)
    assert np.isnan(M.auroc(np.zeros(4, int), probs))  # one class: undefined, not an error
    probs3 = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1]])
    # class 2 absent from this fold: macro over classes 0 (AUROC 1.0) and 1 (1.0)
    assert M.auroc(np.array([0, 1, 0, 1]), probs3) == pytest.approx(1.0)


def test_binary_f1_is_the_named_positive_class():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])  # 0 = MUT, 1 = WT (sorted)
    pred = np.array([0, 1, 1, 1, 1, 1, 1, 0])
    # MUT: tp 1, fp 1, fn 2 -> 2/(2+1+2) = 0.4; WT: tp 4, fp 2, fn 1 -> 8/11
    assert M.f1(y, pred, 2, positive=0) == pytest.approx(0.4)
    assert M.f1(y, pred, 2, positive=1) == pytest.approx(8 / 11)
    assert M.balanced_accuracy(y, pred) == pytest.approx((1 / 3 + 4 / 5) / 2)
    y3, p3 = np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1])
    # macro: class 0 F1 1, class 1 F1 0, class 2 F1 2/(2+2)=0.5
    assert M.f1(y3, p3, 3) == pytest.approx(0.5)


def test_mse_and_pearson():
    y = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    pred = np.array([[1.0, 4.0], [3.0, 6.0], [2.0, 5.0]])
    assert M.mse(y, pred) == pytest.approx((0 + 1 + 1 + 1 + 1 + 0) / 6)
    # column 1 of y is constant (r undefined) and left out; column 0: r = 0.5
    assert M.pearson(y, pred) == pytest.approx(0.5)


def test_c_index_worked_example():
    time = np.array([1.0, 2.0, 2.0, 3.0])
    event = np.array([1, 1, 0, 1])
    risk = np.array([3.0, 2.0, 2.5, 1.0])
    # comparable pairs (earlier time is an event; an event tied with a censored time counts, the censored
    # subject outlived it): (0,1) (0,2) (0,3) (1,3) concordant, (1,2) discordant (2.0 < 2.5) -> 4/5
    assert M.concordance_index(time, event, risk) == pytest.approx(0.8)
    # ties in risk count 1/2: (0,1) tied 0.5, (0,2) and (1,2) concordant -> 2.5/3
    assert M.concordance_index([1, 2, 3], [1, 1, 1], [2, 2, 1]) == pytest.approx(2.5 / 3)
    assert np.isnan(M.concordance_index([1, 1], [1, 1], [0, 1]))  # two events at one time: no pair


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


MUT_WT = "".join(f"P{i:02d},{'MUT' if i < 6 else 'WT'}\n" for i in range(12))


def test_positive_class_from_option_file_or_default(tmp_path):
    lab = read_labels(_csv(tmp_path, "slide_id,label\n" + MUT_WT), "classification", n_folds=5)
    assert lab.classes == ["MUT", "WT"] and lab.positive == 1 and lab.positive_from == "default"
    assert "'WT': the second of 'MUT', 'WT' sorted" in lab.positive_note()
    lab = read_labels(
        _csv(tmp_path, "# positive: MUT\nslide_id,label\n" + MUT_WT), "classification", n_folds=5
    )
    assert (lab.positive, lab.positive_from, len(lab.slide_ids)) == (0, "the labels file", 12)
    lab = read_labels(
        _csv(tmp_path, "# positive=MUT\nslide_id,label\n" + MUT_WT), "classification", positive="WT"
    )
    assert (lab.positive, lab.positive_from) == (1, "--positive")
    with pytest.raises(LabelsError, match="positive class 'mut' \\(from --positive\\) is not a label"):
        read_labels(_csv(tmp_path, "slide_id,label\n" + MUT_WT), "classification", positive="mut")
    with pytest.raises(LabelsError, match="unknown setting 'postive'"):
        read_labels(_csv(tmp_path, "# postive: MUT\nslide_id,label\n" + MUT_WT), "classification")


def test_task_reports_the_f1_of_mut_when_mut_is_positive(tmp_path):
    lab = read_labels(
        _csv(tmp_path, "# positive: MUT\nslide_id,label\n" + MUT_WT), "classification", n_folds=5
    )
    task = Task("classification", classes=lab.classes, positive=lab.positive)
    # 6 MUT, 6 WT; predicted MUT for 4 MUT and 4 WT -> MUT F1 = 8/(8+4+2) = 4/7, WT F1 = 4/(4+2+4) = 0.4
    p_mut = np.array([0.9] * 4 + [0.2] * 2 + [0.8] * 4 + [0.1] * 2)
    scores = task.evaluate(lab.y, np.stack([p_mut, 1 - p_mut], 1))
    assert scores["f1"] == pytest.approx(4 / 7)
    assert Task.from_config(task.to_config()).positive == 0
    assert Task("classification", classes=lab.classes).evaluate(lab.y, np.stack([p_mut, 1 - p_mut], 1))[
        "f1"
    ] == pytest.approx(0.4)


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
