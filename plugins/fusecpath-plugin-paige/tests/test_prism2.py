"""PRISM2: what it needs, and its remote-code loading path (model + processor), offline.

PRISM2's code is in its gated Hub repo, not available here, so the wiring is tested with a small
remote-code repo in the HF cache exposing the same entry points (a processor called with
``tile_embeddings=[...]`` that pads and masks, ``get_base_embedding(**batch)``): it exercises fusecpath's
resolution (HF_HUB_OFFLINE=1), transformers' remote-code loading of both and the call convention, not
PRISM2's architecture.
"""

import json

import pytest
import torch

import fusecpath
from fusecpath.encoders.verify import verify_encoder
from fusecpath.errors import FusecpathError

MODULE = """
import torch
from transformers import BatchFeature, PretrainedConfig, PreTrainedModel


class TinyConfig(PretrainedConfig):
    model_type = "tiny-prism2"

    def __init__(self, in_dim=6, out_dim=4, **kwargs):
        self.in_dim, self.out_dim = in_dim, out_dim
        super().__init__(**kwargs)


class TinyPrism2(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.proj = torch.nn.Linear(config.in_dim, config.out_dim)
        self.post_init()

    def get_base_embedding(self, tile_embeddings, attention_mask):
        mask = attention_mask[..., None].float()
        return (self.proj(tile_embeddings) * mask).sum(1) / mask.sum(1)


class TinyProcessor:
    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        return cls()

    @classmethod
    def register_for_auto_class(cls, auto_class="AutoProcessor"):
        pass  # transformers calls it on remote-code processors

    def __call__(self, tile_embeddings):
        longest = max(t.shape[0] for t in tile_embeddings)
        padded = torch.zeros(len(tile_embeddings), longest, tile_embeddings[0].shape[1])
        mask = torch.zeros(len(tile_embeddings), longest, dtype=torch.long)
        for i, tiles in enumerate(tile_embeddings):
            padded[i, : len(tiles)], mask[i, : len(tiles)] = tiles, 1
        return BatchFeature({"tile_embeddings": padded, "attention_mask": mask})
"""


def test_prism2_consumes_virchow2_class_tokens():
    spec = fusecpath.get_spec("prism2")
    assert (spec.requires, spec.embed_dim, spec.gated) == ("virchow2-cls", 2560, True)
    assert fusecpath.get_spec("virchow2-cls").embed_dim == 1280
    report = verify_encoder("prism2")
    assert report["built"] is False and "paige-ai/Prism2" in report["note"]


def test_prism2_offline_without_cache_is_one_line(hf_cache):
    with pytest.raises(FusecpathError) as excinfo:
        fusecpath.load_encoder("prism2")
    assert "\n" not in str(excinfo.value) and "paige-ai/Prism2" in str(excinfo.value)


def test_prism2_loads_model_and_processor_from_remote_code(hf_cache, tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from safetensors.torch import save

    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    config = {
        "model_type": "tiny-prism2",
        "auto_map": {
            "AutoConfig": "modeling_tiny.TinyConfig",
            "AutoModel": "modeling_tiny.TinyPrism2",
            "AutoProcessor": "modeling_tiny.TinyProcessor",
        },
    }
    weight, bias = torch.randn(4, 6), torch.randn(4)
    hf_cache(
        "paige-ai/Prism2",
        {
            "config.json": json.dumps(config).encode(),
            "modeling_tiny.py": MODULE.encode(),
            "model.safetensors": save({"proj.weight": weight, "proj.bias": bias}),
        },
    )
    prism2 = fusecpath.load_encoder("prism2")
    features = torch.randn(5, 6)
    with torch.no_grad():
        out = prism2(features, torch.zeros(5, 2, dtype=torch.long))
    torch.testing.assert_close(out, (features @ weight.T + bias).mean(0))
