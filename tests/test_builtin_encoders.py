"""Each built-in encoder embeds real tissue (cmu_small_region.svs) into finite (B, embed_dim) features."""

from __future__ import annotations

import numpy as np
import openslide
import pytest
import torch

import fusecpath
from fusecpath.encoders.builtin import PATCH_ENCODERS
from fusecpath.encoders.preprocess import preprocess


@pytest.fixture(scope="module")
def tissue_patches(real_slide) -> torch.Tensor:
    """Eight 256 px patches at level 0 (0.499 µm/px): four on tissue, four on glass-poor areas too."""
    slide = openslide.OpenSlide(real_slide)
    width, height = slide.dimensions
    corners = [(x, y) for x in (400, 900, 1400, 1800) for y in (800, 1600)]
    patches = [np.asarray(slide.read_region(c, 0, (256, 256)).convert("RGB")) for c in corners]
    slide.close()
    return torch.from_numpy(np.stack(patches))


@pytest.mark.parametrize("spec", PATCH_ENCODERS, ids=lambda s: s.name)
def test_forward_on_real_tissue(spec, tissue_patches):
    model = fusecpath.load_encoder(spec.name)
    with torch.inference_mode():
        x = preprocess(tissue_patches, spec)
        assert x.shape == (8, 3, spec.input_px, spec.input_px)
        out = model(x)
        again = fusecpath.load_encoder(spec.name)(x)
    assert out.shape == (8, spec.embed_dim)
    assert torch.isfinite(out).all()
    assert torch.equal(out, again), "built-in encoders are deterministic"
    assert out.std(0).max() > 0, "different patches give different features"


def test_stain_and_texture_see_different_things(tissue_patches):
    """hed-stain is blind to texture, gabor-texture to colour: a colour shift moves only one."""
    stain, texture = (fusecpath.get_spec(n) for n in ("hed-stain", "gabor-texture"))
    tinted = tissue_patches.clone()
    tinted[..., 2] = (tinted[..., 2].int() * 7 // 10).to(torch.uint8)  # less blue: weaker hematoxylin
    with torch.inference_mode():
        s0, s1 = (fusecpath.load_encoder(stain.name)(preprocess(p, stain)) for p in (tissue_patches, tinted))
        t0, t1 = (
            fusecpath.load_encoder(texture.name)(preprocess(p, texture)) for p in (tissue_patches, tinted)
        )
    stain_change = ((s1 - s0).norm(dim=1) / s0.norm(dim=1)).mean()
    texture_change = ((t1 - t0).norm(dim=1) / t0.norm(dim=1)).mean()
    assert stain_change > 5 * texture_change


def test_mean_pool_slide_encoder():
    model = fusecpath.load_encoder("mean-hed-stain")
    feats = torch.arange(12.0).view(4, 3)
    assert torch.equal(model(feats, torch.zeros(4, 2)), torch.tensor([4.5, 5.5, 6.5]))
    assert fusecpath.get_spec("mean-hed-stain").requires == "hed-stain"
