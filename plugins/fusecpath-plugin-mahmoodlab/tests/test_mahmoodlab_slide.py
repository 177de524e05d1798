"""Mahmood Lab slide encoders: what they need, and the remote-code loading path, offline.

TITAN and FEATHER run their Hub repos' own code (trust_remote_code). That code is not available here,
so the wiring is tested with a small remote-code repo written into the HF cache that exposes the same
entry points (``encode_slide_from_patch_features``, ``forward_features``): it exercises fusecpath's
resolution (HF_HUB_OFFLINE=1), transformers' remote-code loading and the call convention, not the
authors' architectures.
"""

import importlib.util
import json

import pytest
import torch

import fusecpath
from fusecpath.api import describe_encoder
from fusecpath.encoders.verify import verify_encoder
from fusecpath.errors import FusecpathError

CONFIG = """
from transformers import PretrainedConfig


class TinySlideConfig(PretrainedConfig):
    model_type = "tiny-slide"

    def __init__(self, in_dim=8, out_dim=4, **kwargs):
        self.in_dim, self.out_dim = in_dim, out_dim
        super().__init__(**kwargs)
"""

MODELING = """
import torch
from transformers import PreTrainedModel

from .configuration_tiny import TinySlideConfig


class TinySlideModel(PreTrainedModel):
    config_class = TinySlideConfig

    def __init__(self, config):
        super().__init__(config)
        self.proj = torch.nn.Linear(config.in_dim, config.out_dim)
        self.seen_patch_size = None
        self.post_init()

    def encode_slide_from_patch_features(self, features, coords, patch_size_lv0):
        self.seen_patch_size = int(patch_size_lv0)
        return self.proj(features).mean(1) + coords.float().mean(1).sum(-1, keepdim=True) * 0

    def forward_features(self, features):
        return self.proj(features).amax(1), None
"""


def _remote_repo(hf_cache, repo):
    pytest.importorskip("transformers")
    from safetensors.torch import save

    config = {
        "model_type": "tiny-slide",
        "in_dim": 8,
        "out_dim": 4,
        "auto_map": {
            "AutoConfig": "configuration_tiny.TinySlideConfig",
            "AutoModel": "modeling_tiny.TinySlideModel",
        },
    }
    weight, bias = torch.randn(4, 8), torch.randn(4)
    hf_cache(
        repo,
        {
            "config.json": json.dumps(config).encode(),
            "configuration_tiny.py": CONFIG.encode(),
            "modeling_tiny.py": MODELING.encode(),
            "model.safetensors": save({"proj.weight": weight, "proj.bias": bias}),
        },
    )
    return weight, bias


def test_titan_loads_remote_code_offline_and_infers_patch_size(hf_cache):
    weight, bias = _remote_repo(hf_cache, "MahmoodLab/TITAN")
    titan = fusecpath.load_encoder("titan")
    features = torch.randn(6, 8)
    coords = torch.tensor([[0, 0], [1024, 0], [2048, 0], [0, 1024], [1024, 1024], [2048, 1024]])
    with torch.no_grad():
        out = titan(features, coords)
    torch.testing.assert_close(out, (features @ weight.T + bias).mean(0))
    assert titan.model.seen_patch_size == 1024  # 512 px at 20x on a 40x slide: the coords' grid step
    with torch.no_grad():
        titan(features, coords, patch_size_level0=512)
    assert titan.model.seen_patch_size == 512


def test_feather_loads_remote_code_offline(hf_cache):
    weight, bias = _remote_repo(hf_cache, "MahmoodLab/abmil.base.uni_v2.pc108-24k")
    feather = fusecpath.load_encoder("feather-uni2-h")
    features = torch.randn(5, 8)
    with torch.no_grad():
        torch.testing.assert_close(feather(features), (features @ weight.T + bias).amax(0))


@pytest.mark.parametrize(
    ("name", "requires", "dim"),
    [
        ("titan", "conch-v1.5", 768),
        ("madeleine", "conch", 512),
        ("feather-conch-v1.5", "conch-v1.5", 512),
        ("feather-uni2-h", "uni2-h", 512),
    ],
)
def test_slide_specs(name, requires, dim):
    spec = fusecpath.get_spec(name)
    assert (spec.level, spec.requires, spec.embed_dim) == ("slide", requires, dim)
    assert spec.dependencies, "code beyond timm is declared"
    report = verify_encoder(name)
    assert report["built"] is False and spec.hub_repo in report["note"]
    assert "access" in describe_encoder(name)


@pytest.mark.skipif(importlib.util.find_spec("madeleine") is not None, reason="madeleine is installed here")
def test_madeleine_without_its_package_is_one_line(hf_cache):
    with pytest.raises(FusecpathError) as excinfo:
        fusecpath.load_encoder("madeleine")
    message = str(excinfo.value)
    assert "\n" not in message
    assert "pip install 'madeleine @ git+https://github.com/mahmoodlab/MADELEINE.git'" in message
