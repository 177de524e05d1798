"""The round trip: fuse on a small synthetic cohort -> push -> pull into a fresh cache -> predict held-out
slides, with the same predictions as the local model; FM checks refuse a model that cannot run here."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import browser  # noqa: E402
from hubserver import Cli, HubServer, leaks  # noqa: E402

TOKEN = "hf_roundtrip_9d8c7b6a5f4e3d2c1b"


@pytest.fixture(scope="module")
def fused_run(tmp_path_factory):
    """A fuse run folder (tiny and briefly trained: the point is the round trip) and two held-out slides."""
    import torch

    from fusecpath.fusion import FuseOptions, fuse
    from fusecpath.synthetic.slides import make_cohort
    from fusecpath.training.loop import TrainConfig

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fused")
    size = {"width_um": 1000.0, "height_um": 800.0, "workers": 1}
    labels = make_cohort(root / "train", 8, seed=5, **size)
    make_cohort(root / "held", 2, seed=77, formats=("svs",), **size)
    options = FuseOptions(
        folds=2,
        n_clusters=4,
        per_cluster=4,
        n_bags=4,
        baselines=False,
        val_fraction=0.5,
        arch={"hidden": 32, "n_heads": 4, "attn_dim": 16},
        train=TrainConfig(epochs=2, optimizer="adamw", lr=1e-3, batch_size=4),
        progress=False,
    )
    result = fuse(
        ["hed-stain", "gabor-texture"],
        labels,
        "classification",
        root / "run",
        slides=root / "train",
        options=options,
    )
    return root, result


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_round_trip_push_pull_predict(tmp_path, fused_run):
    root, result = fused_run
    with HubServer(tmp_path / "server", {TOKEN: ("lab", ())}) as hub:
        cli = Cli(hub, tmp_path, TOKEN)
        broken = Path(__file__).parent / "data" / "openslide-fixtures" / "unopenable.tiff"
        local = cli(
            "predict",
            str(root / "held"),
            str(broken),
            "--model",
            str(root / "run"),
            "--out",
            str(tmp_path / "local"),
            "--json",
        )
        assert local.returncode == 1  # the broken slide fails, one line; the others are predicted
        assert [
            line for line in local.stderr.splitlines() if "unopenable.tiff" in line
        ] == local.stderr.splitlines()
        assert [f["slide"] for f in json.loads(local.stdout)["failures"]] == [str(broken)]
        push = cli("push", str(root / "run"), "--repo", "lab/synthetic-fused")
        assert push.returncode == 0, push.stderr
        pull = cli("pull", "lab/synthetic-fused", home="fresh", token=None)  # public: no token needed to pull
        assert pull.returncode == 0 and "files verified" in pull.stdout, pull.stderr
        hub.__exit__()  # from here on the Hub is gone: the fresh cache must be enough
        remote = cli(
            "predict",
            str(root / "held"),
            "--model",
            "lab/synthetic-fused",
            "--out",
            str(tmp_path / "remote"),
            "--json",
            home="fresh",
            token=None,
            HF_HUB_OFFLINE="1",
        )
        assert remote.returncode == 0, remote.stderr
    assert not leaks(cli, tmp_path, (TOKEN,))

    before, after = (
        read_csv(tmp_path / "local" / "predictions.csv"),
        read_csv(tmp_path / "remote" / "predictions.csv"),
    )
    assert [r["slide_id"] for r in before] == ["SYN-000-A", "SYN-001-A"]
    columns = ["slide_id", "prediction", "prob_0", "prob_1", "patches", "bags"]
    assert [[r[c] for c in columns] for r in before] == [[r[c] for c in columns] for r in after]
    report = json.loads(remote.stdout)
    assert report["model"] == "lab/synthetic-fused" and not report["failures"]
    for row in report["slides"]:
        geojson = json.loads(Path(row["geojson"]).read_text())
        assert len(geojson["features"]) == row["patches"] > 0
        assert {"score", "attention", "cluster"} <= set(geojson["features"][0]["properties"])
        assert Path(row["heatmap"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (
        Path(
            json.loads(
                cli(
                    "pull", "lab/synthetic-fused", "--json", home="fresh", token=None, HF_HUB_OFFLINE="1"
                ).stdout
            )["directory"]
        )
        / "README.md"
    ).read_text()
    assert "| fusecpath | " in card and "fusecpath pull lab/synthetic-fused" in card


def test_predict_refuses_models_it_cannot_run(tmp_path, fused_run):
    from fusecpath.checkpoint import read_checkpoint, write_checkpoint
    from fusecpath.inference import ModelMismatchError, predict

    root, result = fused_run
    state, config, _ = read_checkpoint(result.checkpoint)
    config["patch_fms"][1]["fingerprint"] = "0" * 16
    write_checkpoint(tmp_path / "other-version", state, config)
    with pytest.raises(ModelMismatchError, match="gabor-texture: the installed spec .* a different version"):
        predict([root / "held"], tmp_path / "other-version", tmp_path / "out")
    config["patch_fms"][1] = {**config["patch_fms"][1], "name": "acme-fm", "plugin": "fusecpath-plugin-acme"}
    write_checkpoint(tmp_path / "missing", state, config)
    with pytest.raises(
        ModelMismatchError, match="acme-fm is not installed: `pip install fusecpath-plugin-acme`"
    ):
        predict([root / "held"], tmp_path / "missing", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before any work


def test_predict_shards_cover_the_slides_like_one_run(tmp_path, fused_run):
    from fusecpath.inference import predict

    root, _ = fused_run
    for index in range(2):
        result = predict([root / "held"], root / "run", tmp_path, shard=f"{index}/2", progress=False)
        assert result.predictions.name == f"predictions-{index}-of-2.csv" and not result.failures
    whole = predict([root / "held"], root / "run", tmp_path, progress=False)  # features reused
    shards = read_csv(tmp_path / "predictions-0-of-2.csv") + read_csv(tmp_path / "predictions-1-of-2.csv")
    assert sorted(shards, key=lambda r: r["slide_id"]) == read_csv(whole.predictions)


def test_predict_index_in_chromium(tmp_path, fused_run):
    """index.html: every slide's heatmap over its thumbnail and its prediction, as Chromium draws it."""
    from fusecpath.inference import predict

    root, _ = fused_run
    result = predict([root / "held"], root / "run", tmp_path / "out", progress=False)
    page = tmp_path / "out" / "index.html"
    browser.self_contained(page.read_text())
    png = browser.screenshot(page, tmp_path / "predict-index.png", (1280, 1000))
    seen = browser.not_blank(png)
    assert seen["inked"] > 0.05 and seen["colours"] > 200, seen
    dom = browser.dump_dom(page, tmp_path / "profile")
    cards = re.findall(r'data-slide="([^"]+)".*?<p class="pred">([^<]+)</p>', dom, re.S)
    rows = read_csv(result.predictions)
    assert dict(cards) == {
        r["slide_id"]: f"{r['prediction']} (p {float(r['prob_' + r['prediction']]):.3f})" for r in rows
    }
    assert len(browser.cells(dom).images) == len(result.rows) == 2
