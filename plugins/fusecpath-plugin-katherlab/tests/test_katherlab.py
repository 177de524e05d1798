"""KatherLab plugin: COBRA's registration, what verify says without the authors' package, one-line errors."""

import importlib.util

import pytest

import fusecpath
from fusecpath.api import describe_encoder
from fusecpath.encoders.verify import verify_encoder
from fusecpath.errors import FusecpathError
from fusecpath.plugins import get_plugins

HAS_COBRA = (
    importlib.util.find_spec("cobra") is not None and importlib.util.find_spec("mamba_ssm") is not None
)


def test_discovered_through_entry_point():
    (info,) = [p for p in get_plugins() if p.distribution == "fusecpath-plugin-katherlab"]
    assert info.models == ["cobra"]


def test_cobra_output_has_its_tile_encoders_dim():
    spec = fusecpath.get_spec("cobra")
    tiles = fusecpath.get_spec(spec.requires)
    assert spec.requires == "virchow2-cls" and spec.embed_dim == tiles.embed_dim == 1280
    assert tiles.embed_dim in spec.arch["input_dims"]  # COBRA has an input head for it
    assert (spec.license, spec.gated) == ("GPL-3.0", True)


@pytest.mark.skipif(
    HAS_COBRA, reason="the cobra package and mamba-ssm are installed: the build is checked below"
)
def test_verify_without_the_package_says_what_to_install():
    report = verify_encoder("cobra")
    assert report["built"] is False and report["ok"] is None
    assert "cobra @ git+https://github.com/KatherLab/COBRA" in report["note"] and "\n" not in report["note"]
    assert "mamba-ssm" in describe_encoder("cobra")["dependencies"]


@pytest.mark.skipif(HAS_COBRA, reason="the cobra package is installed")
def test_load_without_the_package_is_one_line(hf_cache):
    with pytest.raises(FusecpathError) as excinfo:
        fusecpath.load_encoder("cobra")
    assert "\n" not in str(excinfo.value) and "pip install" in str(excinfo.value)


@pytest.mark.skipif(not HAS_COBRA, reason="needs the authors' cobra package and mamba-ssm (CUDA only)")
def test_architecture_on_meta():
    report = verify_encoder("cobra")
    assert report["ok"] and report["output_dim"] == 1280, report
