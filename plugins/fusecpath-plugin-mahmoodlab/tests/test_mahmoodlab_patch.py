"""Mahmood Lab patch encoders: architectures on meta, preprocessing, checkpoint round trips."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fusecpath_plugin_mahmoodlab import conch
from PIL import Image

import fusecpath
from fusecpath.encoders import timm_vit
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import build_on_meta, verify_encoder
from fusecpath.plugins import get_plugins
from fusecpath.testing import assert_input_close, randomise_, shrink, torch_bytes

IN = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


def test_discovered_through_entry_point():
    (info,) = [p for p in get_plugins() if p.distribution == "fusecpath-plugin-mahmoodlab"]
    assert info.models == [
        "conch",
        "conch-v1.5",
        "feather-conch-v1.5",
        "feather-uni2-h",
        "madeleine",
        "titan",
        "uni",
        "uni2-h",
    ]
    assert fusecpath.get_spec("conchv1_5").name == "conch-v1.5"
    assert fusecpath.get_spec("uni2").name == "uni2-h"


# Published: UNI ViT-L/16 303M (Chen et al. 2024); UNI2-h ViT-H/14 681M (its model card).
@pytest.mark.parametrize(("name", "published", "dim"), [("uni", 303e6, 1024), ("uni2-h", 681e6, 1536)])
def test_uni_on_meta(name, published, dim):
    report = verify_encoder(name)
    assert report["built"] and report["ok"] and report["output_dim"] == dim, report
    assert abs(report["parameters"] - published) / published < 0.01, report["parameters"]


@pytest.mark.parametrize(
    ("name", "dim", "trunk_width", "trunk_published"),
    [
        ("conch", 512, 768, 86e6),  # CoCa image tower: ViT-B/16 trunk (86M) at 448 px
        ("conch-v1.5", 768, 1024, 303e6),  # ViT-L/16 trunk (303M) at 448 px
    ],
)
def test_conch_towers_on_meta(name, dim, trunk_width, trunk_published):
    report = verify_encoder(name)
    assert report["built"] and report["ok"] and report["output_dim"] == dim, report
    model = build_on_meta(fusecpath.get_spec(name))
    assert model.trunk.num_features == trunk_width and model.trunk.patch_embed.grid_size == (28, 28)
    trunk = sum(p.numel() for p in model.trunk.parameters())
    assert abs(trunk - trunk_published) / trunk_published < 0.015, trunk
    assert report["parameters"] - trunk < 3e6  # one-query pooler and LayerNorm


def _card(patches, resize, crop, mode, norm):
    """Resize(resize, mode) -> CenterCrop(crop) -> ToTensor -> Normalize: the model cards' transforms,
    the resize in PIL."""
    images = [Image.fromarray(p) for p in patches.numpy()]
    if images[0].width != resize:
        filters = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
        images = [image.resize((resize, resize), filters[mode]) for image in images]
    x = torch.from_numpy(np.stack([np.asarray(image) for image in images])).permute(0, 3, 1, 2).float() / 255
    top = (resize - crop) // 2
    x = x[..., top : top + crop, top : top + crop]
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in norm)
    return (x - mean) / std


@pytest.mark.parametrize(
    ("name", "read", "resize", "crop", "mode", "norm"),
    [
        ("uni", 256, 224, 224, "bilinear", IN),
        ("uni2-h", 256, 224, 224, "bilinear", IN),
        ("conch", 512, 448, 448, "bicubic", CLIP),
        ("conch-v1.5", 512, 448, 448, "bilinear", IN),
    ],
)
def test_preprocessing(name, read, resize, crop, mode, norm):
    spec = fusecpath.get_spec(name)
    assert (spec.mpp, spec.read_px, spec.input_px) == (0.5, read, crop)
    patches = torch.randint(0, 256, (2, read, read, 3), dtype=torch.uint8)
    assert_input_close(preprocess(patches, spec), _card(patches, resize, crop, mode, norm), spec)


def test_uni_round_trip_through_hf_cache(hf_cache):
    spec = shrink(
        fusecpath.get_spec("uni"),
        {"embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": 32},
        embed_dim=32,
        input_px=32,
    )
    reference = randomise_(timm_vit.architecture(spec)).eval()
    state = reference.trunk.state_dict()
    assert {"cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.ls1.gamma", "norm.weight"} <= set(
        state
    )
    hf_cache("MahmoodLab/UNI", {"pytorch_model.bin": torch_bytes(state), "config.json": b"{}"})
    loaded = fusecpath.load_encoder(spec)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), reference(x))
        torch.testing.assert_close(loaded(x), reference.trunk.forward_features(x)[:, 0])  # CLS token


def _small_conch(name, width=32, dim=24):
    return shrink(
        fusecpath.get_spec(name),
        {
            "trunk": {
                **fusecpath.get_spec(name).arch["trunk"],
                "embed_dim": width,
                "depth": 2,
                "num_heads": 2,
                "img_size": 64,
            },
            "heads": 4,
        },
        embed_dim=dim,
        input_px=64,
    )


def test_conch_round_trip_from_full_coca_checkpoint(hf_cache):
    """CONCH's pytorch_model.bin holds the whole CoCa model; only visual.{trunk,attn_pool_contrast,
    ln_contrast} make the embedding (encode_image(proj_contrast=False, normalize=False))."""
    spec = _small_conch("conch")
    tower = randomise_(conch.architecture(spec)).eval()
    full = {f"visual.{k}": v for k, v in tower.state_dict().items()}
    full.update(
        {
            "visual.proj_contrast": torch.randn(24, 24),
            "visual.attn_pool_caption.query": torch.randn(256, 16),
            "visual.ln_caption.weight": torch.randn(16),
            "text.token_embedding.weight": torch.randn(10, 16),
            "text_decoder.resblocks.0.ln_1.weight": torch.randn(16),
            "logit_scale": torch.tensor(4.6),
        }
    )
    assert "visual.attn_pool_contrast.attn.q_proj_weight" in full  # kdim != dim: separate projections
    hf_cache("MahmoodLab/conch", {"pytorch_model.bin": torch_bytes(full), "open_clip_config.json": b"{}"})

    loaded = fusecpath.load_encoder(spec)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = loaded(x)
        torch.testing.assert_close(out, tower(x))
        # CONCH's pooler written out: sequence-first MultiheadAttention of the normed query over normed tokens.
        tokens = tower.trunk.forward_features(x)
        pool = tower.attn_pool_contrast
        kv = pool.ln_k(tokens).permute(1, 0, 2)
        q = pool.ln_q(pool.query).unsqueeze(1).repeat(1, x.shape[0], 1)
        mha = torch.nn.MultiheadAttention(24, 4, kdim=32, vdim=32)
        mha.load_state_dict(pool.attn.state_dict())
        pooled = mha(q, kv, kv, need_weights=False)[0].permute(1, 0, 2)[:, 0]
        expected = F.layer_norm(
            pooled, (24,), full["visual.ln_contrast.weight"], full["visual.ln_contrast.bias"]
        )
    torch.testing.assert_close(out, expected)
    assert out.shape == (2, 24)


def test_conch_v15_round_trip_with_ibot_position_interpolation(hf_cache):
    """pytorch_model_vision.bin (trunk.*, attn_pool_contrast.*, ln_contrast.*) with its position embedding
    on the 224 px grid: at 448 px the iBOT ViT interpolates it bicubically by (grid + 0.1) / old."""
    spec = _small_conch("conch-v1.5")
    tower = randomise_(conch.architecture(spec)).eval()
    state = tower.state_dict()
    assert {
        "attn_pool_contrast.to_q.weight",
        "attn_pool_contrast.to_kv.weight",
        "trunk.blocks.1.ls2.gamma",
    } <= set(state)
    small_grid = torch.randn(1, 1 + 2 * 2, 32)  # stored for a 2 x 2 grid, the model runs on 4 x 4
    saved = {**state, "trunk.pos_embed": small_grid}
    hf_cache("MahmoodLab/conchv1_5", {"pytorch_model_vision.bin": torch_bytes(saved), "config.json": b"{}"})

    loaded = fusecpath.load_encoder(spec)
    grid = F.interpolate(
        small_grid[:, 1:].reshape(1, 2, 2, 32).permute(0, 3, 1, 2),
        scale_factor=(4.1 / 2, 4.1 / 2),
        mode="bicubic",
    )
    expected_pos = torch.cat([small_grid[:, :1], grid.permute(0, 2, 3, 1).reshape(1, 16, 32)], dim=1)
    torch.testing.assert_close(loaded.trunk.pos_embed.data, expected_pos)

    tower.trunk.pos_embed.data.copy_(expected_pos)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = loaded(x)
        torch.testing.assert_close(out, tower(x))
        # The v1.5 pooler written out: softmax(q k^T / sqrt(d)) v per head, bias-free projections.
        pool = tower.attn_pool_contrast
        tokens = pool.ln_k(tower.trunk.forward_features(x))
        q = pool.to_q(pool.ln_q(pool.query))  # (1, 24)
        k, v = pool.to_kv(tokens).chunk(2, dim=-1)
        heads = []
        for h in range(4):
            sl = slice(6 * h, 6 * h + 6)
            attn = torch.softmax(torch.einsum("qd,bnd->bqn", q[:, sl], k[..., sl]) / math.sqrt(6), dim=-1)
            heads.append(torch.einsum("bqn,bnd->bqd", attn, v[..., sl]))
        pooled = pool.to_out(torch.cat(heads, dim=-1))[:, 0]
    torch.testing.assert_close(out, tower.ln_contrast(pooled))
