"""Lunit plugin: ViT-S/8 and ViT-S/16 on the meta device, Lunit's own normalisation, a checkpoint round trip."""

import pytest
import torch

import fusecpath
from fusecpath.encoders import timm_vit
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import verify_encoder
from fusecpath.testing import assert_input_close, randomise_, reference_input, shrink


# Published: ViT-S 21.7M parameters (the DINO paper's table; Lunit trains the same ViT-S/8 and S/16).
@pytest.mark.parametrize("name", ["lunit-vits8", "lunit-vits16"])
def test_architecture_on_meta(name):
    report = verify_encoder(name)
    assert report["ok"] and report["output_dim"] == 384
    assert report["parameters"] == pytest.approx(21.7e6, rel=0.01)


@pytest.mark.parametrize("name", ["lunit-dino-s8", "lunit-dino-s16"])
def test_preprocessing_lunit_statistics(name):
    spec = fusecpath.get_spec(name)
    assert spec.mean == (0.70322989, 0.53606487, 0.66096631)
    assert spec.std == (0.21716536, 0.26081574, 0.20723464)
    assert (spec.mpp, spec.read_px, spec.input_px, spec.crop) == (0.5, 224, 224, False)
    patches = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8)
    x = preprocess(patches, spec)
    assert x.shape == (2, 3, 224, 224)
    assert_input_close(x, reference_input(patches, spec), spec)


def test_vits16_checkpoint_round_trip(hf_cache, tmp_path):
    """A small ViT-S/16 in the mirror's model.safetensors, loaded offline; the embedding is the CLS token."""
    from safetensors.torch import save_file

    spec = shrink(
        fusecpath.get_spec("lunit-vits16"),
        {"embed_dim": 24, "depth": 2, "num_heads": 2, "img_size": 32},
        embed_dim=24,
        input_px=32,
    )
    reference = randomise_(timm_vit.architecture(spec)).eval()
    save_file(reference.trunk.state_dict(), str(tmp_path / "model.safetensors"))
    hf_cache(
        "1aurent/vit_small_patch16_224.lunit_dino", {"model.safetensors": tmp_path / "model.safetensors"}
    )
    loaded = fusecpath.load_encoder(spec)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = loaded(x)
        torch.testing.assert_close(out, reference.trunk.forward_features(x)[:, 0])
    assert out.shape == (2, 24)
