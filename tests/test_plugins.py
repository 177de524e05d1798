"""The plugin system: entry-point discovery, isolation of broken plugins, strict mode, selection.

Broken plugins are real distributions: a module plus a ``*.dist-info`` with an entry point, put on
PYTHONPATH of a fresh ``fusecpath`` process, so discovery runs exactly as for an installed package.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fusecpath
from fusecpath.api import LIST_FIELDS, config_fms, describe_encoders, fm_record
from fusecpath.errors import FusecpathError, SpecError, UnknownModelError
from fusecpath.plugins import PluginWarning, get_plugins, get_registry, pm
from fusecpath.zoo import Source

SPEC = """
import fusecpath

def spec(name, **kw):
    return fusecpath.EncoderSpec(name=name, level="patch", embed_dim=8, loader="{module}:build", **kw)
"""


def make_dist(site: Path, dist: str, body: str) -> None:
    """Write an installed distribution ``dist`` whose module is ``body`` and whose entry point is it."""
    module = dist.replace("-", "_")
    (site / f"{module}.py").write_text(SPEC.format(module=module) + textwrap.dedent(body))
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[fusecpath]\n{module} = {module}\n")


def run_cli(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(site), **env}
    for key in ("FUSECPATH_LOAD_PLUGINS", "FUSECPATH_STRICT_PLUGINS"):
        if key not in env:
            environ.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "fusecpath", *args], capture_output=True, text=True, env=environ, timeout=120
    )


def names(result: subprocess.CompletedProcess) -> set[str]:
    return {row["name"] for row in json.loads(result.stdout)}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    make_dist(
        tmp_path,
        "acme-good",
        """
        @fusecpath.hookimpl
        def register_encoders(register):
            register(spec("acme-edge", aliases=("acme",)))
    """,
    )
    make_dist(tmp_path, "acme-broken-import", "raise ImportError('no module named torchscale')\n")
    make_dist(
        tmp_path,
        "acme-raising-hook",
        """
        @fusecpath.hookimpl
        def register_encoders(register):
            register(spec("acme-fine"))
            raise RuntimeError("weights index unreachable")
    """,
    )
    make_dist(
        tmp_path,
        "zeta-duplicate",
        """
        @fusecpath.hookimpl
        def register_encoders(register):
            register(spec("acme-other"))
            register(spec("acme-edge"))
    """,
    )
    return tmp_path


def test_broken_plugins_are_skipped_with_one_warning_each(site):
    result = run_cli(site, "models", "list", "--json")
    assert result.returncode == 0, result.stderr
    found = names(result)
    assert {"acme-edge", "hed-stain", "template-edge"} <= found
    # a broken plugin is skipped whole: nothing it registered before failing is kept
    assert not {"acme-fine", "acme-other"} & found
    warnings = [line for line in result.stderr.splitlines() if line.startswith("fusecpath: warning:")]
    assert len(warnings) == 3, result.stderr
    joined = "\n".join(warnings)
    assert "'acme-broken-import' failed to import (ImportError: no module named torchscale)" in joined
    assert "pip uninstall acme-broken-import" in joined
    assert "'acme-raising-hook' raised in register_encoders (RuntimeError" in joined
    assert "'zeta-duplicate' registers model name 'acme-edge', which 'acme-good' already registers" in joined
    assert "Traceback" not in result.stderr


def test_strict_mode_turns_a_broken_plugin_into_an_error(site):
    result = run_cli(site, "models", "list", FUSECPATH_STRICT_PLUGINS="1")
    assert result.returncode == 1
    assert result.stderr.startswith("fusecpath: error: plugin 'acme-broken-import' failed to import")
    assert "Traceback" not in result.stderr


def test_load_plugins_selects_distributions(site):
    only_good = run_cli(site, "models", "list", "--json", FUSECPATH_LOAD_PLUGINS="acme-good")
    assert only_good.returncode == 0 and only_good.stderr == ""
    found = names(only_good)
    assert "acme-edge" in found and "hed-stain" in found and "template-edge" not in found

    builtins_only = run_cli(site, "models", "list", "--json", FUSECPATH_LOAD_PLUGINS="")
    assert {r["plugin"] for r in json.loads(builtins_only.stdout)} == {"fusecpath"}


def test_plugins_command_lists_distribution_version_hooks_models(site):
    result = run_cli(site, "plugins", "--json", FUSECPATH_LOAD_PLUGINS="acme-good")
    rows = {row["distribution"]: row for row in json.loads(result.stdout)}
    assert rows["acme-good"] == {
        "name": "acme_good",
        "distribution": "acme-good",
        "version": "0.1",
        "hooks": ["register_encoders"],
        "models": ["acme-edge"],
    }
    assert "hed-stain" in rows["fusecpath"]["models"]
    # its patch FM's mean-<fm> slide baseline is generated by the registry and listed under the plugin
    listed = run_cli(site, "models", "list", "--json", FUSECPATH_LOAD_PLUGINS="acme-good")
    (baseline,) = [row for row in json.loads(listed.stdout) if row["name"] == "mean-acme-edge"]
    assert (baseline["level"], baseline["requires"], baseline["plugin"]) == (
        "slide",
        "acme-edge",
        "acme-good",
    )


class DuplicatePlugin:
    """A plugin object registered by hand, as a test would (like llm's tests)."""

    @fusecpath.hookimpl
    def register_encoders(self, register):
        register(fusecpath.EncoderSpec(name="hed-stain", level="patch", embed_dim=8, loader="x:y"))


class ExtraPlugin:
    @fusecpath.hookimpl
    def register_encoders(self, register):
        register(
            fusecpath.EncoderSpec(name="extra-fm", level="patch", embed_dim=8, loader="x:y", aliases=("xfm",))
        )


def test_registered_object_appears_then_disappears():
    pm.register(ExtraPlugin(), name="extra")
    try:
        assert fusecpath.get_spec("xfm").name == "extra-fm"
        assert get_registry().plugin_of("extra-fm") == "extra"
        baseline = fusecpath.get_spec("mean-extra-fm")  # generated for every patch FM, a third party's too
        assert (baseline.level, baseline.requires, baseline.embed_dim) == ("slide", "extra-fm", 8)
        assert get_registry().plugin_of("mean-extra-fm") == "extra"
    finally:
        pm.unregister(name="extra")
    assert "extra-fm" not in get_registry() and "mean-extra-fm" not in get_registry()


class BadLiteralPlugin:
    @fusecpath.hookimpl
    def register_encoders(self, register):
        register(
            fusecpath.EncoderSpec(name="bad-fm", level="patch", embed_dim=8, loader="x:y", precision="fp64")
        )


def test_a_bad_literal_is_one_line_naming_the_plugin():
    pm.register(BadLiteralPlugin(), name="bad")
    try:
        with pytest.warns(PluginWarning) as caught:
            registry = get_registry()
        (message,) = [str(w.message) for w in caught]
        assert message.startswith(
            "plugin 'bad' raised in register_encoders (SpecError: bad-fm: precision must be"
        )
        assert "fp32, fp16, bf16, not 'fp64'" in message and "\n" not in message
        assert "bad-fm" not in registry
    finally:
        pm.unregister(name="bad")


def test_duplicate_name_names_both_plugins(monkeypatch):
    pm.register(DuplicatePlugin(), name="dupe")
    try:
        with pytest.warns(UserWarning, match="'dupe' registers model name 'hed-stain', which 'fusecpath'"):
            registry = get_registry()
        assert registry.plugin_of("hed-stain") == "fusecpath"
        monkeypatch.setenv("FUSECPATH_STRICT_PLUGINS", "1")
        pm.unregister(name="dupe")
        pm.register(DuplicatePlugin(), name="dupe")
        with pytest.raises(fusecpath.errors.PluginError, match="'dupe'.*'fusecpath'"):
            get_registry()
    finally:
        pm.unregister(name="dupe")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownModelError) as info:
        fusecpath.get_spec("hed-stian")
    message = str(info.value)
    assert "unknown model 'hed-stian'" in message and "hed-stain" in message
    assert "fusecpath models list --all" in message
    with pytest.raises(UnknownModelError, match="unknown model 'zzzz': `fusecpath"):
        fusecpath.get_spec("zzzz")


def test_aliases_resolve_case_insensitively():
    assert fusecpath.get_spec("HED").name == "hed-stain"
    assert fusecpath.get_spec("rcnn").name == "random-cnn"


def test_real_template_plugin_is_found_through_its_entry_point():
    (template,) = [p for p in get_plugins() if p.distribution == "fusecpath-plugin-template"]
    assert template.name == "template" and template.version == "0.1.0"
    assert get_registry().plugin_of("template-edge") == "fusecpath-plugin-template"


def test_spec_validation():
    with pytest.raises(ValueError, match="lower-case"):
        fusecpath.EncoderSpec(name="UNI", level="patch", embed_dim=1, loader="a:b")
    with pytest.raises(ValueError, match="module:callable"):
        fusecpath.EncoderSpec(name="uni", level="patch", embed_dim=1, loader="a.b")
    with pytest.raises(SpecError, match="architecture must be 'module:callable'"):
        fusecpath.EncoderSpec(name="uni", level="patch", embed_dim=1, loader="a:b", architecture="a")
    bad = {
        "level": ("tile", "level must be one of patch, slide, not 'tile'"),
        "precision": ("fp64", "precision must be one of fp32, fp16, bf16"),
        "interpolation": ("lanczos", "interpolation must be one of bilinear, bicubic, nearest"),
        "pooling": ("avg", "pooling must be one of cls, cls\\+mean, mean"),
        "source": ("hf:org/x", "source 'hf:org/x': use 'builtin', 'hf-hub:org/name'"),
        "embed_dim": (0, "embed_dim must be a positive int"),
        "mean": ((0.5, 0.5), "mean needs 3 values"),
        "requires": ("uni", "only slide encoders have requires="),
    }
    for field, (value, message) in bad.items():
        with pytest.raises(SpecError, match=message):
            fusecpath.EncoderSpec(
                **{"name": "x", "level": "patch", "embed_dim": 1, "loader": "a:b", field: value}
            )
    slide = fusecpath.EncoderSpec(name="s", level="slide", embed_dim=1, loader="a:b", requires="uni")
    assert slide.read_geometry is None and slide.input_px is None


def test_arch_is_frozen_hashable_picklable_and_serialised_as_plain_data():
    arch = {"trunk": {"model_name": "vit", "img_size": [224, 224]}, "heads": 8}
    spec = fusecpath.EncoderSpec(name="x", level="patch", embed_dim=1, loader="a:b", arch=arch)
    arch["heads"] = 9  # the spec keeps its own copy
    with pytest.raises(TypeError):
        spec.arch["heads"] = 4
    with pytest.raises(TypeError):
        spec.arch["trunk"]["img_size"] = 1
    assert spec.arch["heads"] == 8 and spec.arch["trunk"]["img_size"] == (224, 224)
    assert pickle.loads(pickle.dumps(spec)) == spec and hash(spec)
    assert json.loads(json.dumps(spec.to_dict()))["arch"] == {
        "trunk": {"model_name": "vit", "img_size": [224, 224]},
        "heads": 8,
    }
    # freezing does not change the fingerprint: lists and tuples serialise alike
    assert spec.fingerprint() == dataclasses.replace(spec, arch={**spec.arch}).fingerprint()


def test_fingerprint_changes_with_what_the_encoder_computes_only():
    spec = fusecpath.get_spec("hed-stain")
    labels = {
        "description": "reworded",
        "license": "MIT",
        "paper": "another paper",
        "aliases": ("hed2",),
        "dependencies": ("numpy",),
        "gated": True,
        "loader": "elsewhere.module:load",  # where the code lives is no feature change
        "architecture": "elsewhere.module:architecture",
    }
    for field, value in labels.items():
        assert dataclasses.replace(spec, **{field: value}).fingerprint() == spec.fingerprint(), field
    computes = {
        "input_px": 256,
        "precision": "fp16",
        "pooling": "mean",
        "mean": (0.5, 0.5, 0.5),
        "arch": {"x": 1},
    }
    for field, value in computes.items():
        assert dataclasses.replace(spec, **{field: value}).fingerprint() != spec.fingerprint(), field


def test_source_is_parsed_into_its_kind():
    assert Source.parse("builtin") == Source("builtin") and not Source("builtin").has_weights
    model = Source.parse("hf-hub:MahmoodLab/UNI")
    assert (model.kind, model.repo_id, model.repo_type) == ("hf-model", "MahmoodLab/UNI", "model")
    assert model.page == "https://huggingface.co/MahmoodLab/UNI"
    data = Source.parse("hf-dataset:MahmoodLab/hest-bench")
    assert (data.repo_id, data.repo_type) == ("MahmoodLab/hest-bench", "dataset")
    assert data.page == "https://huggingface.co/datasets/MahmoodLab/hest-bench"
    assert data.download_command() == "hf download MahmoodLab/hest-bench --repo-type dataset"
    url = Source.parse("url:https://example.org/weights")
    assert (url.kind, url.repo_id, url.page) == ("url", None, "https://example.org/weights")
    assert Source.parse("package:musk @ git+https://github.com/lilab-stanford/MUSK").kind == "package"
    for text in ("hf-hub:datasets/org/name", "hf-hub:", "s3://bucket"):
        with pytest.raises(SpecError):
            Source.parse(text)
    assert str(data) == "hf-dataset:MahmoodLab/hest-bench"


def test_api_checks_its_arguments_before_any_work():
    with pytest.raises(FusecpathError, match="level 'tile': use 'patch' or 'slide'"):
        fusecpath.list_encoders(level="tile")
    with pytest.raises(FusecpathError, match="level 'tile'"):
        describe_encoders(level="tile")
    with pytest.raises(FusecpathError, match="hed-stain is built in and has no weights"):
        fusecpath.load_encoder("hed-stain", weights="/tmp/x.safetensors")


def test_one_fm_record_for_fuse_cards_hub_and_listing():
    record = fm_record("HED")
    assert record == {
        "name": "hed-stain",
        "level": "patch",
        "embed_dim": 32,
        "fingerprint": fusecpath.get_spec("hed-stain").fingerprint(),
        "mpp": 0.5,
        "read_px": 256,
        "requires": None,
        "source": "builtin",
        "license": "Apache-2.0",
        "gated": False,
        "plugin": "fusecpath",
    }
    (row,) = [r for r in describe_encoders() if r["name"] == "hed-stain"]
    assert {k: row[k] for k in LIST_FIELDS} == {k: record[k] for k in LIST_FIELDS}  # a list row is the record
    completed = config_fms({"fms": [{"name": "hed-stain", "license": "stored"}, "mean-hed-stain"]})
    assert completed[0]["license"] == "stored" and completed[0]["fingerprint"] == record["fingerprint"]
    assert completed[1]["requires"] == "hed-stain" and completed[1]["level"] == "slide"
    with pytest.raises(UnknownModelError):
        fm_record("not-a-model")
