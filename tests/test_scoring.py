"""One scoring path: a saved checkpoint predicts a slide (``predict_slide``, as ``fusecpath predict``
calls it) exactly as cross-validation's path (``loop.predict`` -> ``FuseCPathMethod.score``) scores it
with the same weights; the distillation loss with and without the teachers' own task loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusecpath.checkpoint.folder import read_checkpoint
from fusecpath.features.store import feature_path, open_features
from fusecpath.fusion import FusedModel, predict_slide
from fusecpath.fusion.cohort import open_ready_cohort
from fusecpath.fusion.fuse import FuseOptions, fused_config, save_model, split_fms
from fusecpath.fusion.methods import FuseCPathMethod
from fusecpath.synthetic.features import write_feature_store
from fusecpath.training.loop import TrainConfig, predict, train
from fusecpath.training.tasks import Task

FMS = ["hed-stain", "gabor-texture", "mean-hed-stain"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("scoring")
    labels_csv = write_feature_store(root / "features", n_slides=6, n_patches=30)
    options = FuseOptions(n_clusters=3, per_cluster=2, n_bags=3, seeds=[4], arch={"hidden": 16, "n_heads": 2})
    patch_fms, slide_fms = split_fms(FMS)
    ready = open_ready_cohort(
        root / "features", labels_csv, "classification", patch_fms, slide_fms, 2, 3, 4, root / "run"
    )
    labels, cohort = ready.labels, ready.slides
    config = fused_config(patch_fms, slide_fms, options)
    task = Task("classification", classes=labels.classes)
    return root, labels, cohort, config, task


@pytest.mark.parametrize("cr2t", ["fusecpath", "official"])
def test_checkpoint_predictions_equal_the_out_of_fold_path(setup, cr2t, tmp_path):
    root, labels, cohort, config, task = setup
    config = {**config, "arch": {**config["arch"], "cr2t": cr2t}}
    method = FuseCPathMethod(cohort, config, n_bags=3, per_cluster=2, seed=4)
    ids = list(labels.slide_ids)
    cfg = TrainConfig(epochs=1, optimizer="adamw", lr=1e-2, batch_size=4)
    model, _ = train(method, task, ids[:4], labels.y[:4], ids[4:], labels.y[4:], cfg)
    oof = predict(method, model, task, ids, "cpu")

    state, saved, directory = read_checkpoint(save_model(model, tmp_path / "model"))
    loaded = FusedModel.from_checkpoint(state, saved, directory)
    for i, (sid, expected) in enumerate(zip(ids, oof, strict=True)):
        feats = open_features(feature_path(root / "features", sid))
        given = None if i < 2 else cohort[sid].clusters  # two slides re-clustered as predict does
        got = predict_slide(loaded, {n: feats.patch(n) for n in FMS[:2]}, clusters=given, slide_id=sid)
        assert np.array_equal(got.clusters, cohort[sid].clusters)
        np.testing.assert_allclose(got.output, expected, rtol=0, atol=1e-6)


def test_teacher_ce_adds_the_teachers_task_loss(setup):
    _, labels, cohort, config, task = setup
    torch.manual_seed(0)
    official = FuseCPathMethod(cohort, config, n_bags=3, per_cluster=2, seed=4)
    with_ce = FuseCPathMethod(cohort, config, n_bags=3, per_cluster=2, seed=4, teacher_ce=True)
    assert with_ce.config["distillation"]["teacher_ce"] is True
    model = official.build(task)
    official.prepare(model, list(labels.slide_ids))
    model.eval()
    inputs, pos = next(official.batches(list(labels.slide_ids), 0, 6, 0))
    y = task.target_tensor(labels.y[pos])
    out = model(*inputs)
    ce, kl = task.loss(out.logits, y), torch.stack([task.distill(t, out.logits) for t in out.teacher_logits])
    teacher_ce = torch.stack([task.loss(t, y) for t in out.teacher_logits]).mean()
    torch.testing.assert_close(official.loss(model, inputs, y, task), 0.5 * ce + 0.5 * kl.mean())
    torch.testing.assert_close(
        with_ce.loss(model, inputs, y, task), 0.5 * (ce + teacher_ce) + 0.5 * kl.mean()
    )
    # official: the teacher projection learns only through KL, so with KL switched off it gets nothing
    official.lam = 1.0
    model.zero_grad()
    official.loss(model, inputs, y, task).backward()
    assert all(p.grad is None or not p.grad.any() for p in model.teachers.parameters())
    with_ce.lam = 1.0
    model.zero_grad()
    with_ce.loss(model, inputs, y, task).backward()
    assert any(p.grad is not None and p.grad.any() for p in model.teachers.parameters())
