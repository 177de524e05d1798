"""CARE: registration, the call adapter (grid coordinates, lengths), and offline errors."""

import pytest
import torch
from fusecpath_plugin_care.slide import care_call
from torch import nn

import fusecpath
from fusecpath.encoders.remote import SlideEncoder
from fusecpath.encoders.verify import verify_encoder
from fusecpath.errors import WeightsError


def test_spec():
    spec = fusecpath.get_spec("care")
    assert (spec.level, spec.embed_dim, spec.requires, spec.gated) == ("slide", 512, "conch-v1.5", True)
    assert verify_encoder("care")["built"] is False  # its code ships with the weights


class Recorder(nn.Module):
    """Stands in for CARE's remote module to check what the adapter passes (not a model of CARE)."""

    def forward(self, features, lengths, coords):
        self.seen = (features, lengths, coords)
        return type("Out", (), {"wsi_embedding": features.mean(1)[:, :512]})()


def test_adapter_passes_grid_coordinates():
    recorder = Recorder()
    encoder = SlideEncoder(recorder, care_call)
    features = torch.randn(6, 768)
    coords = torch.tensor([[0, 0], [512, 0], [1024, 0], [0, 512], [512, 512], [1536, 1024]])
    out = encoder(features, coords, patch_size_level0=512)
    seen_features, lengths, grid = recorder.seen
    assert out.shape == (512,)
    assert seen_features.shape == (1, 6, 768) and lengths.tolist() == [6]
    assert grid[0].tolist() == [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [3, 2]]
    encoder(features, coords)  # the patch size inferred from the grid step
    assert torch.equal(recorder.seen[2], grid)


def test_not_cached_offline_is_one_line(hf_cache):
    with pytest.raises(WeightsError) as info:
        fusecpath.load_encoder("care")
    assert "\n" not in str(info.value) and "Zipper-1/CARE" in str(info.value)
