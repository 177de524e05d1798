"""KEEP: the vision tower's size on the meta device, preprocessing, and a checkpoint with KEEP's own key
names (``visual.*``, LayerScale as ``.weight``, the text encoder beside it) loaded offline."""

import dataclasses

import pytest
import torch
from fusecpath_plugin_keep import model as keep

import fusecpath
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import verify_encoder
from fusecpath.testing import assert_input_close, reference_input


def test_architecture_on_meta():
    report = verify_encoder("keep")
    assert report["ok"] and report["output_dim"] == 768
    # ViT-L/16 (303.3M) + projection head 1024 -> 768 -> 768 (1.38M)
    assert report["parameters"] == pytest.approx(303.3e6 + 1.38e6, rel=0.005)


def test_preprocessing_bicubic_crop_imagenet():
    spec = fusecpath.get_spec("keep")
    assert (spec.mpp, spec.read_px) == (0.5, 256)  # TRIDENT: --patch_size 256 --mag 20
    assert (spec.input_px, spec.crop, spec.interpolation, spec.mean) == (
        224,
        True,
        "bicubic",
        (0.485, 0.456, 0.406),
    )
    patches = torch.randint(0, 256, (2, 256, 256, 3), dtype=torch.uint8)
    assert_input_close(preprocess(patches, spec), reference_input(patches, spec), spec)


def test_checkpoint_with_keep_key_names(hf_cache, tmp_path):
    from safetensors.torch import save_file

    spec = fusecpath.get_spec("keep")
    small = dataclasses.replace(
        spec, embed_dim=32, arch=dict(spec.arch, embed_dim=64, depth=2, num_heads=2, projection_dim=32)
    )
    torch.manual_seed(0)
    direct = keep.architecture(small).eval()
    state = {
        k.replace(".ls1.gamma", ".ls1.weight").replace(".ls2.gamma", ".ls2.weight"): v
        for k, v in direct.state_dict().items()
    }
    assert "visual.blocks.0.ls1.weight" in state
    state.update(
        {"text.embeddings.word_embeddings.weight": torch.randn(10, 8), "logit_scale": torch.ones(())}
    )
    save_file(state, str(tmp_path / "model.safetensors"))
    hf_cache("Astaxanthin/KEEP", {"model.safetensors": tmp_path / "model.safetensors"})
    loaded = fusecpath.load_encoder(small)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        out = loaded(x)
        projected = direct.visual_head(direct.visual.forward_features(x)[:, 0])
    torch.testing.assert_close(out, torch.nn.functional.normalize(projected, dim=-1))
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2))
