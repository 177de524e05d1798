"""``--cr2t official``: the official regions, masks and dispatch on hand-worked examples; per-slide
isolation kept; the official pooling; ``fuse --cr2t official`` runs."""

from __future__ import annotations

import pytest
import torch

from fusecpath.fusion.abmil import AttentionPool
from fusecpath.fusion.cr2t import (
    CrossRegionAttention,
    RegionAttention,
    official_dispatch,
    topk_mask,
    window_index,
)
from fusecpath.fusion.model import OFFICIAL_ARCH, FusedModel

CONFIG = {
    "patch_fms": [{"name": "a", "embed_dim": 6}],
    "clustering": {"n_clusters": 5, "seed": 0},
    "bags": {"per_cluster": 2, "n_bags": 2},
    "arch": {"hidden": 16, "n_heads": 2, "n_summaries": 2, "region_num": 2, "top_k": 2, **OFFICIAL_ARCH},
    "n_outputs": 2,
    "task": {"kind": "classification", "classes": ["x", "y"]},
}


def test_ten_tokens_pad_to_a_4x4_grid_cut_into_four_2x2_windows():
    # grid (row-major):  0  1 |  2  3      windows: top-left {0,1,4,5}, top-right {2,3,6,7},
    #                    4  5 |  6  7               bottom-left {8,9,12,13}, bottom-right {10,11,14,15};
    #                   ------+------               positions 10..15 are padding
    #                    8  9 | 10 11
    #                   12 13 | 14 15
    index, padded = window_index(10, region_num=2)
    assert padded == 16
    assert index.tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]


def test_a_paper_bag_is_a_24x24_grid_of_3x3_windows_mixing_clusters_and_padding():
    index, padded = window_index(500)  # 50 clusters x 10 patches, region_num 8
    assert padded == 576 and index.shape == (64, 9)
    assert index[0].tolist() == [0, 1, 2, 24, 25, 26, 48, 49, 50]
    assert {int(p) // 10 for p in index[0]} == {0, 2, 4, 5}  # four clusters share the first window
    assert all(p >= 500 for p in index[63].tolist())  # the last window is all padding
    assert sorted(index.reshape(-1).tolist()) == list(range(576))


def test_topk_mask_keeps_each_querys_k_largest_and_leaves_short_rows_alone():
    logits = torch.tensor([[0.1, 0.5, 0.3, 0.9], [2.0, -1.0, 0.0, 1.0]])
    masked = topk_mask(logits, 2)
    kept = masked > torch.finfo(logits.dtype).min
    assert kept.tolist() == [[False, True, False, True], [True, False, False, True]]
    assert torch.equal(masked[kept], logits[kept])
    assert torch.equal(topk_mask(logits, 4), logits)
    weights = torch.softmax(masked, -1)
    assert torch.allclose(weights[0], torch.tensor([0.0, 0.4013, 0.0, 0.5987]), atol=1e-4)


def test_official_dispatch_is_min_max_over_tokens_times_softmax_over_summaries():
    logits = torch.tensor([[0.0, 1.0, 2.0], [4.0, 2.0, 0.0]])  # (G=2 summaries, P=3 tokens)
    minmax = torch.tensor([[0.0, 0.5, 1.0], [1.0, 0.5, 0.0]])
    soft = torch.softmax(logits, 0)
    assert torch.allclose(official_dispatch(logits), minmax * soft, atol=1e-6)


def test_cross_region_attention_is_per_slide():
    torch.manual_seed(0)
    attn = CrossRegionAttention(8, n_heads=2, n_summaries=2, region_num=2, top_k=None).eval()
    x = torch.randn(3, 10, 8)
    other = x.clone()
    other[1] = torch.randn(10, 8) * 4
    with torch.no_grad():
        a, b = attn(x), attn(other)
    assert a.shape == x.shape
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) and not torch.equal(a[1], b[1])


def test_region_attention_stays_inside_windows():
    torch.manual_seed(0)
    attn = RegionAttention(8, n_heads=2, kernel=3, region_num=2, top_k=None).eval()
    x = torch.randn(1, 10, 8)
    other = x.clone()
    other[0, 9] += 5.0  # position 9 is in the bottom-left window {8, 9, 12, 13}
    with torch.no_grad():
        a, b = attn(x), attn(other)
    changed = {i for i in range(10) if not torch.equal(a[0, i], b[0, i])}
    assert changed == {8, 9}


def test_official_model_keeps_bags_apart_and_pools_without_gate_or_bias():
    torch.manual_seed(0)
    model = FusedModel(CONFIG).eval()
    assert model.pool.gate is None and model.pool.value[0].bias is None and model.pool.score.bias is None
    bags = torch.randn(3, 5, 2, 6)
    other = bags.clone()
    other[0] = torch.randn(5, 2, 6)
    with torch.no_grad():
        a, b = model(bags), model(other)
    assert a.logits.shape == (3, 2) and a.attention.shape == (3, 10)
    assert torch.equal(a.logits[1], b.logits[1]) and torch.equal(a.logits[2], b.logits[2])


def test_unknown_pooling_is_refused():
    with pytest.raises(ValueError, match="gated"):
        AttentionPool(8, 4, kind="mean")


def test_cli_fuse_cr2t_official_runs_and_saves_the_official_arch(tmp_path, capsys):
    import json

    from fusecpath.cli import main
    from fusecpath.synthetic.features import write_feature_store

    labels = write_feature_store(tmp_path / "features", n_slides=6, n_patches=24)
    args = ["fuse", "--fms", "hed-stain,gabor-texture", "--features", str(tmp_path / "features"),
            "--labels", str(labels), "--task", "classification", "--out", str(tmp_path / "run"),
            "--folds", "2", "--epochs", "1", "--clusters", "4", "--per-cluster", "3", "--bags", "2",
            "--hidden", "16", "--no-baselines", "--cr2t", "official", "--json"]  # fmt: skip
    with pytest.raises(SystemExit) as ok:
        main(args)
    assert not ok.value.code
    assert list(json.loads(capsys.readouterr().out)["methods"]) == ["fusecpath"]
    arch = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["arch"]
    assert arch["cr2t"] == "official" and arch["pool"] == "relu" and arch["hidden"] == 16
    with pytest.raises(SystemExit) as bad:
        main([*args[:-3], "--cr2t", "windows", "--out", str(tmp_path / "run2")])
    assert bad.value.code
    assert "--cr2t is fusecpath or official" in capsys.readouterr().err


def test_raw_concatenation_and_xavier_init_options():
    model = FusedModel({**CONFIG, "arch": {**CONFIG["arch"], "feature_norm": "none", "init": "xavier"}})
    x = torch.randn(2, 6) * 7 + 3
    model.norm.fit(x)
    assert torch.equal(model.norm(x), x)
    assert all(
        not m.bias.any() for m in model.modules() if isinstance(m, torch.nn.Linear) and m.bias is not None
    )
    with pytest.raises(ValueError, match="feature_norm"):
        FusedModel({**CONFIG, "arch": {**CONFIG["arch"], "feature_norm": "l2"}})
