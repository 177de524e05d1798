"""Feature-level synthetic cohorts: each design's ground truth holds, as simple probes see it."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fusecpath.synthetic.features import STATES, SynthError, make_feature_cohort, simulate_cohort

FMS = ("uni", "conch-v1.5")  # two real widths (1024, 768) keep the probes fast


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Small matrices: one BLAS thread is faster than many fighting over two shared cores."""
    with threadpool_limits(1):
        yield


def probe(cohort, fms, slide=False) -> float:
    """Out-of-fold AUROC of logistic regression on mean-pooled features (or slide embeddings)."""
    x = np.asarray(
        [np.concatenate([s.slide[fm] if slide else s.patch[fm].mean(0) for fm in fms]) for s in cohort.slides]
    )
    y = np.array([s.label == "pos" for s in cohort.slides], dtype=int)
    return oof_auroc(x, y, [s.slide_id[:12] for s in cohort.slides])


def oof_auroc(x, y, groups) -> float:
    """5 patient-grouped folds, standardised L2 logistic regression, AUROC of the pooled predictions."""
    scores = np.zeros(len(y))
    for train, test in StratifiedGroupKFold(5, shuffle=True, random_state=0).split(x, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000))
        scores[test] = model.fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, scores))


def test_cohort_shape_ids_and_widths():
    cohort = simulate_cohort("complementary", n_slides=30, seed=0, fms=FMS, patches=(20, 40))
    ids = [s.slide_id for s in cohort.slides]
    assert len(ids) == len(set(ids)) == 30 and all(i.startswith("TCGA-") for i in ids)
    by_patient = defaultdict(list)
    for s in cohort.slides:
        by_patient[s.slide_id[:12]].append(s)
        assert s.patch["uni"].shape == (len(s.coords), 1024) and s.patch["conch-v1.5"].shape[1] == 768
        assert 20 <= len(s.coords) <= 40 and len(np.unique(s.coords, axis=0)) == len(s.coords)
    multi = [slides for slides in by_patient.values() if len(slides) > 1]
    assert multi and all(len({s.label for s in slides}) == 1 for slides in multi)
    assert len({len(s.coords) for s in cohort.slides}) > 5  # patch counts vary
    with pytest.raises(SynthError, match="unknown design"):
        simulate_cohort("regions")
    with pytest.raises(SynthError, match="needs 2 to 5 patch FMs"):
        simulate_cohort("complementary", fms=("uni",))


def _patch_auroc(cohort, fm, a: int, b: int) -> float:
    """How well patches of state ``a`` are told from state ``b`` by ``fm`` (out-of-fold by slide,
    each slide giving as many of one as of the other, so stain cannot tell them apart)."""
    xs, ys, groups = [], [], []
    for g, s in enumerate(cohort.slides):
        ia, ib = np.flatnonzero(s.states == a), np.flatnonzero(s.states == b)
        n = min(len(ia), len(ib))
        for label, idx in ((1, ia[:n]), (0, ib[:n])):
            xs.append(s.patch[fm][idx])
            ys += [label] * n
            groups += [g] * n
    x, y = np.concatenate(xs), np.array(ys)
    scores = np.zeros(len(y))
    for train, test in StratifiedGroupKFold(4, shuffle=True, random_state=0).split(x, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
        scores[test] = model.fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, scores))


def test_complementary_each_fm_is_blind_to_the_others_markers():
    cohort = simulate_cohort("complementary", n_slides=24, seed=1, fms=FMS, patches=(60, 80))
    twins = (1, 2)  # marker m is a look-alike of STATES[twins[m]]
    for i, fm in enumerate(FMS):
        for m, twin in enumerate(twins):
            auroc = _patch_auroc(cohort, fm, len(STATES) + m, twin)
            assert auroc > 0.95 if m == i else auroc < 0.65, (fm, m, auroc)
    for s in cohort.slides:
        assert (s.label == "pos") == (s.truth["contrast"] > 0)


def test_complementary_needs_every_fm():
    cohort = simulate_cohort("complementary", n_slides=60, seed=0, fms=FMS, patches=(40, 80))
    single = max(probe(cohort, [fm]) for fm in FMS)
    both = probe(cohort, FMS)
    assert both > single + 0.1, (single, both)


def test_subtypes_each_fm_finds_only_its_own_lesion_subtype():
    cohort = simulate_cohort("subtypes", n_slides=24, seed=1, fms=FMS, patches=(60, 80))
    names = [f"subtype{m}" for m in range(len(FMS))]
    for s in cohort.slides:
        present = [n for n in names if s.truth["state_counts"][n] > 0]
        assert present == ([names[s.truth["subtype"]]] if s.label == "pos" else []), s.truth
    assert {s.truth["subtype"] for s in cohort.slides if s.label == "pos"} == {0, 1}
    for i, fm in enumerate(FMS):
        for m in range(len(FMS)):  # every subtype is a look-alike of tumour (state 0)
            auroc = _patch_auroc(cohort, fm, len(STATES) + m, 0)
            assert auroc > 0.95 if m == i else auroc < 0.65, (fm, m, auroc)


def test_redundant_first_fm_carries_the_signal():
    cohort = simulate_cohort("redundant", n_slides=60, seed=0, fms=FMS, patches=(40, 80))
    for s in cohort.slides:
        lesions = s.truth["state_counts"]["lesion"]
        assert (lesions > 0) == (s.label == "pos")
    # the lesion is faint and a few per cent of a slide, so a mean hides it; a patch classifier
    # trained on a few slides' patches finds it, best through the first FM
    lesion = len(STATES)  # the first marker state
    train, test = cohort.slides[:10], cohort.slides[10:]

    def patch_probe(fms):
        def xy(slides):
            x = np.concatenate([np.concatenate([s.patch[fm] for fm in fms], 1) for s in slides])
            return x, np.concatenate([s.states == lesion for s in slides])

        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000))
        x, y = xy(test)
        return roc_auc_score(y, model.fit(*xy(train)).decision_function(x))

    first, other, both = patch_probe(["uni"]), patch_probe(["conch-v1.5"]), patch_probe(FMS)
    assert first > other + 0.03 and first > both - 0.02, (first, other, both)


def test_teacher_slide_fm_knows_more_than_the_patches(tmp_path):
    cohort = simulate_cohort("teacher", n_slides=60, seed=0, fms=FMS, patches=(40, 80))
    assert list(cohort.slides[0].slide) == ["titan"]  # a registered slide FM that requires conch-v1.5
    patches, teacher = probe(cohort, FMS), probe(cohort, ["titan"], slide=True)
    assert teacher > patches + 0.15, (patches, teacher)
    # the patches do carry g, weakly: tumour patches' mean tells the clean label apart
    some = [s for s in cohort.slides if (s.states == 0).sum() >= 3]
    tumour = np.asarray([s.patch["uni"][s.states == 0].mean(0) for s in some])
    clean = np.array([s.truth["clean_label"] for s in some])
    groups = [s.slide_id[:12] for s in some]
    assert oof_auroc(tumour, clean, groups) > 0.6
    labels = make_feature_cohort(tmp_path, "teacher", n_slides=4, fms=FMS, patches=(10, 12))
    truth = json.loads((labels.parent / "ground_truth.json").read_text())
    assert truth["slide_fms"]["titan"]["simulated"] is True and len(truth["slides"]) == 4
    assert labels.read_text().splitlines()[0] == "slide_id,label,patient_id"
