"""The fused model: slides never attend to each other, distillation reaches the teachers, config rebuilds."""

from __future__ import annotations

import json

import pytest
import torch

from fusecpath.fusion.cr2t import CR2TBlock
from fusecpath.fusion.model import FusedModel
from fusecpath.training.tasks import Task

CONFIG = {
    "patch_fms": [{"name": "a", "embed_dim": 6}, {"name": "b", "embed_dim": 10}],
    "slide_fms": [{"name": "s1", "embed_dim": 5}, {"name": "s2", "embed_dim": 7}],
    "clustering": {"n_clusters": 4, "seed": 0},
    "bags": {"per_cluster": 3, "n_bags": 2},
    "arch": {"hidden": 32, "n_heads": 4, "n_summaries": 2},
    "n_outputs": 3,
    "task": {"kind": "classification", "classes": ["x", "y", "z"]},
}


def test_perturbing_one_bag_leaves_the_others_bit_identical():
    torch.manual_seed(0)
    model = FusedModel(CONFIG).eval()
    bags = torch.randn(4, 4, 3, 16)
    other = bags.clone()
    other[2] = torch.randn(4, 3, 16) * 5
    with torch.no_grad():
        a, b = model(bags), model(other)
    for i in (0, 1, 3):
        assert torch.equal(a.logits[i], b.logits[i])
        assert torch.equal(a.attention[i], b.attention[i])
    assert not torch.equal(a.logits[2], b.logits[2])


def test_cross_cluster_attention_mixes_clusters_within_a_bag():
    torch.manual_seed(0)
    block = CR2TBlock(16, n_heads=4, kernel=15, n_summaries=2).eval()
    x = torch.randn(1, 3, 5, 16)
    y = x.clone()
    y[0, 2] = torch.randn(5, 16) * 3  # change cluster 2 only
    with torch.no_grad():
        assert not torch.allclose(block(x)[0, 0], block(y)[0, 0])  # cluster 0 hears about it


def test_layer_scale_starts_the_block_near_the_identity_and_is_learned():
    torch.manual_seed(0)
    plain = CR2TBlock(16, n_heads=4, n_summaries=2).eval()
    scaled = CR2TBlock(16, n_heads=4, n_summaries=2, layer_scale=0.01).eval()
    scaled.load_state_dict(plain.state_dict(), strict=False)  # same attention weights, gains added
    x = torch.randn(2, 3, 5, 16)
    with torch.no_grad():
        change_plain, change_scaled = (plain(x) - x).abs().mean(), (scaled(x) - x).abs().mean()
    assert change_scaled < 0.05 * change_plain  # the residual branches start 100x quieter
    scaled(x).sum().backward()
    assert all(g.grad is not None and g.grad.abs().sum() > 0 for g in scaled.gains)
    config = {**CONFIG, "arch": {**CONFIG["arch"], "layer_scale": 0.01}}
    assert sum(1 for k in FusedModel(config).state_dict() if ".gains." in k) == 2
    assert not any(".gains." in k for k in FusedModel(CONFIG).state_dict())


def test_distillation_gradients_reach_teacher_projections_and_shared_head():
    torch.manual_seed(0)
    model = FusedModel(CONFIG)
    task = Task("classification", classes=["x", "y", "z"])
    out = model(torch.randn(2, 4, 3, 16), [torch.randn(2, 5), torch.randn(2, 7)])
    distill = torch.stack([task.distill(t, out.logits) for t in out.teacher_logits]).mean()
    distill.backward()
    for proj in model.teachers:
        assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
    assert model.head.weight.grad.abs().sum() > 0
    assert model.proj[0].weight.grad.abs().sum() > 0  # the student learns from the teachers too


def test_kl_distillation_matches_reference_formula():
    task = Task("classification", classes=["x", "y"])
    teacher, student = torch.tensor([[2.0, -1.0]]), torch.tensor([[0.5, 0.3]])
    p = torch.softmax(teacher / 3, -1)
    q = torch.softmax(student / 3, -1)
    assert task.distill(teacher, student).item() == pytest.approx(
        9 * (p * (p / q).log()).sum().item(), rel=1e-5
    )


def test_config_is_json_and_rebuilds_the_model():
    model = FusedModel(CONFIG)
    clone = FusedModel.from_config(json.loads(json.dumps(model.config)))
    clone.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 4, 3, 16)
    model.eval()
    clone.eval()
    assert torch.equal(model(x).logits, clone(x).logits)


def test_final_norm_is_an_option_and_old_configs_keep_their_layernorm():
    assert isinstance(FusedModel(CONFIG).final_norm, torch.nn.Identity)
    official = FusedModel({**CONFIG, "arch": {**CONFIG["arch"], "final_norm": "layer"}})
    assert isinstance(official.final_norm, torch.nn.LayerNorm)
    saved = json.loads(json.dumps(official.config))
    del saved["arch"]["final_norm"]  # a config saved before the option existed
    old = FusedModel.from_config(saved)
    old.load_state_dict(official.state_dict(), strict=True)
    with pytest.raises(ValueError, match="final_norm"):
        FusedModel({**CONFIG, "arch": {"final_norm": "batch"}})


def test_size_prior_weighs_each_cluster_slot_by_its_share_of_the_slide():
    torch.manual_seed(0)
    shares = torch.tensor([[0.4, 0.1, 0.1, 0.4]])
    bags = torch.randn(1, 4, 3, 16)
    for prior, expected in (
        ("size", shares.repeat_interleave(3, 1) / 3),
        ("none", torch.full((1, 12), 1 / 12)),
    ):
        model = FusedModel({**CONFIG, "arch": {**CONFIG["arch"], "cluster_prior": prior}}).eval()
        torch.nn.init.zeros_(model.pool.score.weight)  # every token scores alike: the prior alone decides
        torch.nn.init.zeros_(model.pool.score.bias)
        with torch.no_grad():
            torch.testing.assert_close(model(bags, shares=shares).attention, expected)
    with pytest.raises(ValueError, match="cluster_prior"):
        FusedModel({**CONFIG, "arch": {"cluster_prior": "count"}})
    saved = {**CONFIG, "arch": {"hidden": 32}}  # a config saved before the option existed: no prior
    assert not FusedModel.from_config(saved).size_prior


def test_projection_is_linear_by_default_and_old_configs_keep_their_relu():
    torch.manual_seed(0)
    model = FusedModel(CONFIG).eval()
    x = torch.randn(3, 16)
    with torch.no_grad():  # linear: proj(a + b) = proj(a) + proj(b) - proj(0)
        torch.testing.assert_close(
            model.proj(x[0] + x[1]), model.proj(x[0]) + model.proj(x[1]) - model.proj(torch.zeros(16))
        )
    paper = FusedModel({**CONFIG, "arch": {**CONFIG["arch"], "proj": "relu"}}).eval()
    paper.load_state_dict(model.state_dict(), strict=True)  # same keys either way
    assert (paper.proj(x) >= 0).all() and (model.proj(x) < 0).any()
    saved = {**CONFIG, "arch": {"hidden": 32}}  # a config saved before the option existed: ReLU
    assert isinstance(FusedModel.from_config(saved).proj[1], torch.nn.ReLU)
    with pytest.raises(ValueError, match="proj"):
        FusedModel({**CONFIG, "arch": {"proj": "gelu"}})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_runs_on_cuda():
    model = FusedModel(CONFIG).cuda().eval()
    out = model(
        torch.randn(2, 4, 3, 16, device="cuda"),
        [torch.randn(2, 5, device="cuda"), torch.randn(2, 7, device="cuda")],
    )
    assert out.logits.is_cuda and out.logits.shape == (2, 3)
