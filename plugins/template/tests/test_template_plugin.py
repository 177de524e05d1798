"""A plugin's own tests: discovered through its real entry point, and its model runs."""

import subprocess
import sys

import torch

import fusecpath
from fusecpath.plugins import get_plugins


def test_discovered_through_entry_point():
    (info,) = [p for p in get_plugins() if p.distribution == "fusecpath-plugin-template"]
    assert info.models == ["template-edge"]
    assert "register_encoders" in info.hooks


def test_model_builds_and_embeds():
    spec = fusecpath.get_spec("template-edge")
    model = fusecpath.load_encoder("template-edge")
    out = model(torch.randn(2, 3, spec.input_px, spec.input_px))
    assert out.shape == (2, spec.embed_dim)
    assert torch.isfinite(out).all()


def test_listed_by_cli_without_torch():
    code = (
        "import sys; from fusecpath.cli import main\n"
        "try: main(['models', 'list', '--json'])\n"
        "except SystemExit: pass\n"
        "assert 'torch' not in sys.modules, 'listing imported torch'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert '"template-edge"' in out.stdout
