"""The synthetic cohort: real pyramidal files, a documented ground truth, and cues that different
built-in encoders see."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import openslide
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fusecpath.api import get_spec, load_encoder
from fusecpath.encoders.preprocess import preprocess
from fusecpath.errors import FusecpathError
from fusecpath.synthetic import slides as synth
from fusecpath.synthetic.slides import (
    CLASSES,
    COLOUR_CUE,
    EPITHELIUM,
    JOINT_CUE,
    TEXTURE_CUE,
    make_cohort,
    patch_truth,
)


def _digest(directory):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_files_are_real_pyramids_with_mpp(small_cohort):
    expected = {
        "SYN-000-A.svs": (0.5, "aperio"),
        "SYN-001-A.tiff": (0.25, "generic-tiff"),
        "SYN-002-A.svs": (0.25, "aperio"),
        "SYN-003-A.tiff": (0.5, "generic-tiff"),
    }
    for name, (mpp, vendor) in expected.items():
        slide = openslide.OpenSlide(small_cohort / name)
        assert slide.properties[openslide.PROPERTY_NAME_VENDOR] == vendor
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(mpp)
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_Y]) == pytest.approx(mpp)
        assert slide.dimensions == (round(1200 / mpp), round(1000 / mpp))
        assert slide.level_count >= 2
        factor = 4 if vendor == "aperio" else 2
        assert slide.level_downsamples[1] == pytest.approx(factor, rel=0.01)
        level1 = np.asarray(slide.read_region((0, 0), 1, slide.level_dimensions[1]))
        assert level1[..., 3].min() == 255 and level1[..., :3].std() > 20  # decoded, tissue on glass


def test_labels_and_ground_truth(small_cohort):
    rows = list(csv.DictReader(open(small_cohort / "labels.csv")))
    assert list(rows[0]) == ["slide_id", "label", "patient_id"]
    truth = json.loads((small_cohort / "ground_truth.json").read_text())
    assert truth["classes"] == list(CLASSES) and set(truth["slides"]) == {r["slide_id"] for r in rows}
    assert truth["generator"] == synth.GENERATOR  # what `make demo` checks before reusing a cohort
    for row in rows:
        entry = truth["slides"][row["slide_id"]]
        cues = {r["cue"] for r in entry["regions"]}
        assert int(row["label"]) == entry["label"]
        assert cues == ({"joint"} if entry["label"] == 1 else {"colour", "texture"})
        for region in entry["regions"]:
            assert 0.02 < region["tissue_fraction"] < 0.15  # a minority of the tissue: a MIL problem
            x0, y0, x1, y1 = region["box_level0"]
            assert 0 <= x0 < x1 <= entry["width"] and 0 <= y0 < y1 <= entry["height"]
            assert region["polygons_level0"]
        labels = np.asarray(Image.open(small_cohort / entry["label_map"]))
        assert labels.shape == (round(1000 / 16), round(1200 / 16)) and labels.max() < len(CLASSES)


def test_patch_truth_finds_the_cue_regions(small_cohort):
    truth = json.loads((small_cohort / "ground_truth.json").read_text())
    for sid, entry in truth["slides"].items():
        for region in entry["regions"]:
            x0, y0, x1, y1 = region["box_level0"]
            centre = np.array([[(x0 + x1) / 2 - 8, (y0 + y1) / 2 - 8]])
            cls = patch_truth(small_cohort, sid, centre, 16)[0]
            assert CLASSES[cls] == region["class"]
    with pytest.raises(FusecpathError, match="not a slide of the synthetic cohort"):
        patch_truth(small_cohort, "nope", np.zeros((1, 2)), 256)


def test_cohort_structure_and_determinism(tmp_path):
    options = dict(width_um=500.0, height_um=400.0, workers=1)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    make_cohort(a, 14, seed=3, **options)
    make_cohort(b, 14, seed=3, **options)
    make_cohort(c, 14, seed=4, **options)
    assert _digest(a) == _digest(b)  # same seed: the same bytes
    assert _digest(a)["labels.csv"] != _digest(c)["labels.csv"] or _digest(a) != _digest(c)
    rows = list(csv.DictReader(open(a / "labels.csv")))
    assert len(rows) == 14
    by_patient: dict[str, set[str]] = {}
    for row in rows:
        by_patient.setdefault(row["patient_id"], set()).add(row["label"])
    assert len(by_patient) < 14 and all(len(labels) == 1 for labels in by_patient.values())
    kinds = {s["cues"] for s in json.loads((a / "ground_truth.json").read_text())["slides"].values()}
    assert kinds == {"joint", "separate"}
    with pytest.raises(FusecpathError, match="unknown option"):
        make_cohort(tmp_path / "d", 1, colour="red")
    with pytest.raises(FusecpathError, match="design must be one of joint, regions"):
        make_cohort(tmp_path / "d", 1, design="mixed")


def test_regions_design_pairs_the_cues_in_positives_only(tmp_path):
    """Positives: one colour and one texture region; negatives: two regions of one cue, alternately;
    every region drawn with the same radius (so region counts and cue areas say nothing alone)."""
    make_cohort(tmp_path, 8, seed=2, design="regions", width_um=1200.0, height_um=1000.0, workers=1)
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    assert truth["design"] == "regions"
    negatives = []
    for entry in truth["slides"].values():
        regions = {r["cue"]: r for r in entry["regions"]}
        if entry["label"] == 1:
            assert entry["cues"] == "separate" and set(regions) == {"colour", "texture"}
        else:
            negatives.append(entry["cues"])
            (cue,) = regions  # one cue, in two separate regions
            assert entry["cues"] == f"{cue}-twice" and len(regions[cue]["polygons_level0"]) == 2
        labels = np.asarray(Image.open(tmp_path / entry["label_map"]))
        assert not (labels == JOINT_CUE).any()
    counts = [negatives.count("colour-twice"), negatives.count("texture-twice")]
    assert min(counts) >= 1 and max(counts) - min(counts) <= 1 and sum(counts) == len(negatives)  # alternate


def _patches(kind: int, seed: int, shift: float = synth.SynthOptions.colour_shift) -> np.ndarray:
    """16 patches (256 px at 0.5 µm/px) of a region of one class, as written (JPEG round trip)."""
    import imagecodecs

    plan = synth.SlidePlan(
        "t",
        "t",
        "svs",
        0.5,
        1024,
        1024,
        1,
        "joint",
        seed,
        0,
        shift,
        85,
        stain_h=1 + 0.1 * np.sin(seed),
        stain_e=1 + 0.1 * np.cos(seed),
        tint=0.01 * (seed % 4),
    )
    image = synth.render_strip(plan, np.full((32, 32), kind, np.uint8), 0, 1024)
    image = imagecodecs.jpeg_decode(imagecodecs.jpeg_encode(image, level=85))
    return image.reshape(4, 256, 4, 256, 3).transpose(0, 2, 1, 3, 4).reshape(16, 256, 256, 3)


def test_colour_cue_keeps_the_grey_image():
    plain = synth.SlidePlan("t", "t", "svs", 0.5, 512, 256, 1, "separate", 7, 0, 0.0, 85)
    shifted = synth.SlidePlan("t", "t", "svs", 0.5, 512, 256, 1, "separate", 7, 0, 18.0, 85)
    labels = np.full((8, 16), COLOUR_CUE, np.uint8)
    a = synth.render_strip(plain, labels, 0, 256).astype(float)
    b = synth.render_strip(shifted, labels, 0, 256).astype(float)
    luma = np.array([0.299, 0.587, 0.114])
    assert np.abs(a - b).mean() > 6  # the colour moved ...
    assert np.abs(a @ luma - b @ luma).mean() < 0.8  # ... the grey level did not


def test_each_encoder_sees_one_cue_and_only_fusion_sees_the_joint_region():
    """Patch-level separability (cross-validated logistic regression, AUROC): hed-stain sees the colour
    cue, gabor-texture the texture cue, each (nearly) blind to the other; so neither alone tells a joint
    region (the positive slides') from the single-cue region it resembles, and both together do."""
    classes = (EPITHELIUM, COLOUR_CUE, TEXTURE_CUE, JOINT_CUE)
    patches = {k: np.concatenate([_patches(k, s) for s in range(2)]) for k in classes}
    feats = {}
    for name in ("hed-stain", "gabor-texture"):
        spec = get_spec(name)
        model = load_encoder(spec)
        with torch.inference_mode():
            feats[name] = {
                k: model(preprocess(torch.from_numpy(p), spec)).numpy() for k, p in patches.items()
            }
    feats["both"] = {k: np.hstack([feats[n][k] for n in ("hed-stain", "gabor-texture")]) for k in classes}

    def auroc(name: str, a: int, b: int) -> float:
        x = np.concatenate([feats[name][a], feats[name][b]])
        y = np.r_[np.zeros(len(feats[name][a])), np.ones(len(feats[name][b]))]
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
        return roc_auc_score(y, cross_val_predict(clf, x, y, cv=4, method="predict_proba")[:, 1])

    assert auroc("hed-stain", EPITHELIUM, COLOUR_CUE) > 0.97
    assert auroc("gabor-texture", EPITHELIUM, TEXTURE_CUE) > 0.97
    assert auroc("gabor-texture", EPITHELIUM, COLOUR_CUE) < 0.75
    assert auroc("hed-stain", COLOUR_CUE, JOINT_CUE) < 0.9  # hed-stain barely sees the bands (0.84)
    assert auroc("gabor-texture", TEXTURE_CUE, JOINT_CUE) < 0.8  # nor gabor-texture the colour (0.65)
    joint = [auroc("both", COLOUR_CUE, JOINT_CUE), auroc("both", TEXTURE_CUE, JOINT_CUE)]
    assert min(joint) > 0.97
