"""Paige plugin: Virchow / Virchow2 architectures, CLS ⊕ mean pooling, preprocessing, round trip; PRISM."""

import numpy as np
import pytest
import torch
from PIL import Image

import fusecpath
from fusecpath.api import describe_encoder
from fusecpath.encoders import timm_vit
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import verify_encoder
from fusecpath.errors import FusecpathError
from fusecpath.plugins import get_plugins
from fusecpath.testing import assert_input_close, randomise_, shrink, torch_bytes

IN_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IN_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def test_discovered_through_entry_point():
    (info,) = [p for p in get_plugins() if p.distribution == "fusecpath-plugin-paige"]
    assert info.models == ["prism", "prism2", "virchow", "virchow2", "virchow2-cls"]
    assert fusecpath.get_spec("prism").requires == "virchow"


# Published: Virchow 632M (Nature Medicine 2024), Virchow2 632M (arXiv:2408.00738); both 2560-d, and
# Virchow2's class token alone 1280-d (eva's leaderboard, TRIDENT's virchow2-cls).
@pytest.mark.parametrize(("name", "dim"), [("virchow", 2560), ("virchow2", 2560), ("virchow2-cls", 1280)])
def test_architecture_on_meta(name, dim):
    report = verify_encoder(name)
    assert report["built"] and report["ok"] and report["output_dim"] == dim, report
    assert abs(report["parameters"] - 632e6) / 632e6 < 0.01, report["parameters"]


@pytest.mark.parametrize("name", ["virchow", "virchow2", "virchow2-cls"])
def test_preprocessing_224_bicubic_no_crop(name):
    spec = fusecpath.get_spec(name)
    assert (spec.mpp, spec.read_px, spec.input_px, spec.crop, spec.interpolation) == (
        0.5,
        224,
        224,
        False,
        "bicubic",
    )
    patches = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8)
    expected = (patches.permute(0, 3, 1, 2).float() / 255 - IN_MEAN) / IN_STD
    torch.testing.assert_close(preprocess(patches, spec), expected)
    # The card's Resize(224, BICUBIC) without a crop: a larger read is squeezed whole into 224 px.
    big = torch.randint(0, 256, (1, 256, 256, 3), dtype=torch.uint8)
    resized = torch.from_numpy(np.array(Image.fromarray(big[0].numpy()).resize((224, 224), Image.BICUBIC)))
    expected = (resized.permute(2, 0, 1)[None].float() / 255 - IN_MEAN) / IN_STD
    assert_input_close(preprocess(big, spec), expected, spec)


@pytest.mark.parametrize(
    ("name", "repo", "registers"), [("virchow", "paige-ai/Virchow", 0), ("virchow2", "paige-ai/Virchow2", 4)]
)
def test_checkpoint_round_trip_and_cls_mean_pooling(hf_cache, name, repo, registers):
    """A small Virchow(2) in pytorch_model.bin; the embedding is CLS ⊕ mean of patch tokens, registers excluded."""
    spec = shrink(
        fusecpath.get_spec(name),
        {"embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": 28},
        embed_dim=64,
        input_px=28,
    )
    reference = randomise_(timm_vit.architecture(spec)).eval()
    state = reference.trunk.state_dict()
    assert ("reg_token" in state) == bool(registers)
    hf_cache(repo, {"pytorch_model.bin": torch_bytes(state), "config.json": b"{}"})

    loaded = fusecpath.load_encoder(spec)
    x = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        out = loaded(x)
        torch.testing.assert_close(out, reference(x))
        tokens = reference.trunk.forward_features(x)  # (2, 1 + registers + 4, 32)
    assert tokens.shape[1] == 1 + registers + 4
    expected = torch.cat([tokens[:, 0], tokens[:, 1 + registers :].mean(1)], dim=-1)
    torch.testing.assert_close(out, expected)
    assert out.shape == (2, 64)


def test_prism_declares_its_remote_code_and_packages():
    report = verify_encoder("prism")
    assert report["built"] is False and "paige-ai/Prism" in report["note"]
    info = describe_encoder("prism")
    assert "transformers==4.42.4" in info["dependencies"]
    assert "access" in info and "https://huggingface.co/paige-ai/Prism" in info["access"]


def test_prism_offline_without_cache_is_one_line(hf_cache):
    with pytest.raises(FusecpathError) as excinfo:
        fusecpath.load_encoder("prism")
    message = str(excinfo.value)
    assert "\n" not in message
    # Either the pinned transformers is missing (with the pip line) or the repo is not cached (with the URL).
    assert "pip install" in message or "https://huggingface.co/paige-ai/Prism" in message


def test_virchow2_cls_is_the_class_token_of_the_same_checkpoint(hf_cache):
    """virchow2-cls reads Virchow2's pytorch_model.bin and returns the first half of virchow2's embedding."""
    small = {"embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": 28}
    full = shrink(fusecpath.get_spec("virchow2"), small, embed_dim=64, input_px=28)
    cls_only = shrink(fusecpath.get_spec("virchow2-cls"), small, embed_dim=32, input_px=28)
    reference = randomise_(timm_vit.architecture(full)).eval()
    hf_cache("paige-ai/Virchow2", {"pytorch_model.bin": torch_bytes(reference.trunk.state_dict())})
    x = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        both = fusecpath.load_encoder(full)(x)
        cls = fusecpath.load_encoder(cls_only)(x)
    torch.testing.assert_close(cls, both[:, :32])
    assert cls.shape == (2, 32)
