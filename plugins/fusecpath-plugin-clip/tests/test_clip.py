"""CLIP plugin: PLIP, QuiltNet and OmiCLIP image towers on the meta device against published sizes,
CLIP preprocessing, and small checkpoints with the real file and key names loaded from an offline HF cache."""

import pytest
import torch

import fusecpath
from fusecpath.encoders.preprocess import preprocess
from fusecpath.encoders.verify import verify_encoder
from fusecpath.plugins import get_plugins
from fusecpath.testing import assert_input_close, randomise_, reference_input, shrink, torch_bytes

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
TINY_TEXT = {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}


def test_discovered_through_entry_point():
    (info,) = [p for p in get_plugins() if p.distribution == "fusecpath-plugin-clip"]
    assert info.models == ["omiclip", "plip", "quiltnet-b32"]


# Published (open_clip's model profile): ViT-B/32 image tower 87.85M of 151.28M; PLIP is OpenAI's
# ViT-B/32 fine-tuned, QuiltNet open_clip's ViT-B-32. CoCa ViT-L/14 (OmiCLIP) is 638.5M in all.
@pytest.mark.parametrize(("name", "dim", "params"), [("plip", 512, 87.85e6), ("quiltnet-b32", 512, 87.85e6)])
def test_vit_b32_towers_on_meta(name, dim, params):
    report = verify_encoder(name)
    assert report["ok"] and report["output_dim"] == dim, report
    assert report["parameters"] == pytest.approx(params, rel=0.001)


def test_omiclip_coca_on_meta():
    import open_clip

    report = verify_encoder("omiclip")
    assert report["ok"] and report["output_dim"] == 768, report
    with torch.device("meta"):
        whole = open_clip.create_model("coca_ViT-L-14", pretrained=None, device="meta")
    assert sum(p.numel() for p in whole.parameters()) == pytest.approx(638.5e6, rel=0.001)
    assert report["parameters"] == sum(p.numel() for p in whole.visual.parameters())


@pytest.mark.parametrize("name", ["plip", "quiltnet", "loki"])
def test_preprocessing_clip_resize_crop(name):
    spec = fusecpath.get_spec(name)
    assert (spec.input_px, spec.crop, spec.interpolation, spec.mean) == (224, True, "bicubic", CLIP_MEAN)
    patches = torch.randint(0, 256, (2, 256, 256, 3), dtype=torch.uint8)
    assert_input_close(preprocess(patches, spec), reference_input(patches, spec), spec)


def test_plip_checkpoint_of_a_whole_clipmodel(hf_cache):
    """A small transformers CLIPModel's pytorch_model.bin (text tower and position_ids buffers included)."""
    from transformers import CLIPConfig, CLIPModel

    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    vision.update(patch_size=8, image_size=32, hidden_act="quick_gelu", projection_dim=24)
    text = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    full = randomise_(CLIPModel(CLIPConfig(vision_config=vision, text_config=text, projection_dim=24))).eval()
    state = dict(full.state_dict())
    state["vision_model.embeddings.position_ids"] = torch.arange(17)[None]
    hf_cache("vinid/plip", {"pytorch_model.bin": torch_bytes(state), "config.json": b"{}"})

    spec = shrink(fusecpath.get_spec("plip"), vision, embed_dim=24, input_px=32)
    loaded = fusecpath.load_encoder(spec)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = full.visual_projection(full.vision_model(pixel_values=x).pooler_output)
        torch.testing.assert_close(loaded(x), expected)


def test_quiltnet_open_clip_checkpoint(hf_cache):
    import open_clip

    arch = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    }
    arch["text_cfg"] = TINY_TEXT
    spec = shrink(fusecpath.get_spec("quiltnet-b32"), arch, embed_dim=16, input_px=32)
    full = randomise_(open_clip.create_model("ViT-B-32", pretrained=None, **arch)).eval()
    hf_cache("wisdomik/QuiltNet-B-32", {"open_clip_pytorch_model.bin": torch_bytes(full.state_dict())})
    loaded = fusecpath.load_encoder(spec)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), full.encode_image(x, normalize=False))


def test_omiclip_training_checkpoint(hf_cache):
    """Loki's checkpoint.pt is an open_clip training checkpoint: epoch, name, DDP-prefixed state_dict."""
    import open_clip

    arch = {"embed_dim": 16, "text_cfg": TINY_TEXT}
    arch["vision_cfg"] = {
        "image_size": 28,
        "layers": 2,
        "width": 32,
        "patch_size": 14,
        "head_width": 16,
        "attentional_pool": True,
    }
    arch["vision_cfg"].update(attn_pooler_heads=2, output_tokens=True)
    arch["multimodal_cfg"] = {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}
    spec = shrink(fusecpath.get_spec("omiclip"), arch, embed_dim=16, input_px=28)
    full = randomise_(open_clip.create_model("coca_ViT-L-14", pretrained=None, **arch)).eval()
    checkpoint = {
        "epoch": 3,
        "name": "omiclip",
        "state_dict": {f"module.{k}": v for k, v in full.state_dict().items()},
    }
    hf_cache("WangGuangyuLab/Loki", {"checkpoint.pt": torch_bytes(checkpoint)})
    loaded = fusecpath.load_encoder(spec)
    x = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        out = loaded(x)
        torch.testing.assert_close(out, full.encode_image(x, normalize=False))
    assert out.shape == (2, 16)


def test_list_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, fusecpath_plugin_clip, fusecpath.plugins as p; p.get_registry(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
