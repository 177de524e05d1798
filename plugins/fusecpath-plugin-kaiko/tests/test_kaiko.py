"""kaiko plugin: the five timm ViTs and Midnight on the meta device, preprocessing, a timm checkpoint
round trip through the real loader, and Midnight's two poolings."""

import dataclasses

import pytest
import torch

import fusecpath
from fusecpath.encoders import hf_vit, timm_vit
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import build_on_meta
from fusecpath.plugins import get_plugins
from fusecpath.testing import assert_input_close, reference_input

# name -> (embed_dim, published parameter count): ViT-S ~22M, ViT-B ~86M, ViT-L/14 ~304M, Midnight ~1.14B.
PUBLISHED = {
    "kaiko-vits8": (384, 21.7e6),
    "kaiko-vits16": (384, 21.7e6),
    "kaiko-vitb8": (768, 85.8e6),
    "kaiko-vitb16": (768, 85.8e6),
    "kaiko-vitl14": (1024, 304.4e6),
    "midnight": (3072, 1.14e9),
    "midnight-cls": (1536, 1.14e9),
}


def test_registered_through_entry_point():
    (info,) = [p for p in get_plugins() if p.distribution == "fusecpath-plugin-kaiko"]
    assert info.models == sorted(PUBLISHED)
    assert fusecpath.get_spec("kaiko-vit-s8").name == "kaiko-vits8"


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_architecture_on_meta(name):
    spec = fusecpath.get_spec(name)
    dim, params = PUBLISHED[name]
    model = build_on_meta(spec)  # the loader module's architecture(spec), on the meta device
    with torch.device("meta"):
        out = model(torch.empty(2, 3, spec.input_px, spec.input_px))
    assert out.shape == (2, dim) == (2, spec.embed_dim)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(params, rel=0.01)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preprocessing_kaiko_statistics(name):
    spec = fusecpath.get_spec(name)
    assert spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.5, 0.5, 0.5)
    assert (spec.input_px, spec.crop, spec.interpolation) == (224, True, "bilinear")
    patches = torch.randint(0, 256, (2, spec.read_px, spec.read_px, 3), dtype=torch.uint8)
    x = preprocess(patches, spec)
    assert x.shape == (2, 3, 224, 224) and x.min() >= -1 and x.max() <= 1
    assert_input_close(x, reference_input(patches, spec), spec)


def test_vitl14_keeps_its_518_position_grid():
    spec = fusecpath.get_spec("kaiko-vitl14")
    with torch.device("meta"):
        trunk = timm_vit.architecture(spec).trunk
    assert trunk.pos_embed.shape == (1, 37 * 37, 1024) and trunk.num_prefix_tokens == 5


def test_timm_checkpoint_round_trip(hf_cache, tmp_path):
    from safetensors.torch import save_file

    spec = fusecpath.get_spec("kaiko-vits16")
    small = dataclasses.replace(spec, arch=dict(spec.arch, depth=2))
    torch.manual_seed(0)
    direct = timm_vit.architecture(small).eval()
    save_file(direct.trunk.state_dict(), str(tmp_path / "model.safetensors"))
    hf_cache(
        "1aurent/vit_small_patch16_224.kaiko_ai_towards_large_pathology_fms",
        {"model.safetensors": tmp_path / "model.safetensors"},
    )
    loaded = fusecpath.load_encoder(small)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), direct.trunk.forward_features(x)[:, 0])


def test_midnight_poolings_share_one_model():
    cls_mean, cls = fusecpath.get_spec("midnight"), fusecpath.get_spec("midnight-cls")
    assert cls_mean.source == cls.source and cls_mean.arch == cls.arch
    small = dict(cls.arch, hidden_size=48, num_hidden_layers=1, num_attention_heads=2, image_size=224)
    torch.manual_seed(0)
    model = hf_vit.architecture(dataclasses.replace(cls_mean, arch=small)).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        tokens = model.model(pixel_values=x).last_hidden_state
        out = model(x)
    torch.testing.assert_close(out, torch.cat([tokens[:, 0], tokens[:, 1:].mean(1)], dim=-1))


def test_midnight_is_public_under_mit():
    """Midnight-12k is public under MIT (its model card; TRIDENT lists it as not gated)."""
    for name in ("midnight", "midnight-cls"):
        spec = fusecpath.get_spec(name)
        assert (spec.license, spec.gated) == ("MIT", False)
