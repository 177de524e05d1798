"""The fused checkpoint folder and its model card: write, verify, load, refuse tampering and pickle."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import torch
from huggingface_hub import ModelCard, metadata_load

from fusecpath.checkpoint import CheckpointError, CheckpointMixin, read_checkpoint, write_checkpoint
from fusecpath.checkpoint.card import hub_licence, metrics_rows, most_restrictive, render_card

FMS = [
    {
        "name": "virchow2",
        "level": "patch",
        "license": "CC-BY-NC-ND-4.0",
        "gated": True,
        "source": "hf-hub:paige-ai/Virchow2",
        "plugin": "fusecpath-plugin-paige",
        "fingerprint": "a" * 16,
    },
    {
        "name": "h-optimus-0",
        "level": "patch",
        "license": "Apache-2.0",
        "gated": False,
        "source": "hf-hub:bioptimus/H-optimus-0",
        "plugin": "fusecpath-plugin-bioptimus",
        "fingerprint": "b" * 16,
    },
    {
        "name": "hed-stain",
        "level": "patch",
        "license": "Apache-2.0",
        "gated": False,
        "source": "builtin",
        "plugin": "fusecpath",
        "fingerprint": "c" * 16,
    },
]
CONFIG = {
    "name": "tp53-fused",
    "task": {"kind": "classification", "classes": ["wild-type", "mutant"]},
    "fms": FMS,
    "cohort": {"slides": 24, "patients": 12, "source": "synthetic"},
}
METRICS = {
    "folds": 5,
    "methods": {
        "fusecpath": {"auroc": [0.9, 0.8, 0.85, 0.95, 0.9]},
        "abmil-concat": {"auroc_mean": 0.71, "auroc_std": 0.05},
    },
}


class TinyModel(CheckpointMixin, torch.nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.config = config
        self.fc = torch.nn.Linear(config["dim"], 2)

    @classmethod
    def from_config(cls, config: dict) -> TinyModel:
        return cls(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


@pytest.fixture
def checkpoint(tmp_path):
    plot = tmp_path / "roc.png"
    plot.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    state = {"head.weight": torch.randn(2, 8), "head.bias": torch.zeros(2), "steps": torch.arange(3)}
    folder = write_checkpoint(tmp_path / "ck", state, CONFIG, METRICS, files={"plots/roc.png": plot})
    return folder, state


def test_round_trip_and_sha256sum_compatible(checkpoint):
    folder, state = checkpoint
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "README.md",
        "SHA256SUMS",
        "config.json",
        "metrics.json",
        "model.safetensors",
        "plots/roc.png",
    ]
    loaded, config, directory = read_checkpoint(folder)
    assert directory == folder
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    assert config["fms"] == FMS and config["checkpoint_format"] == 1 and config["fusecpath_version"]
    assert json.loads((folder / "metrics.json").read_text()) == METRICS
    if shutil.which("sha256sum"):
        run = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
        assert run.returncode == 0 and run.stdout.count(": OK") == 5


def test_write_is_atomic_and_never_clobbers(tmp_path, checkpoint):
    folder, _ = checkpoint
    with pytest.raises(AttributeError):
        write_checkpoint(tmp_path / "broken", {"w": "not a tensor"}, CONFIG)
    assert not (tmp_path / "broken").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="not a fusecpath checkpoint"):
        write_checkpoint(mine, {"w": torch.ones(1)}, CONFIG)
    assert (mine / "keep.txt").read_text() == "mine"
    write_checkpoint(folder, {"w": torch.ones(1)}, CONFIG)  # a checkpoint is replaced whole
    assert list(read_checkpoint(folder)[0]) == ["w"] and not (folder / "plots").exists()


@pytest.mark.parametrize("change", ["edit-config", "edit-weights", "delete-plot", "add-file"])
def test_tampering_is_detected(checkpoint, change):
    folder, _ = checkpoint
    if change == "edit-config":
        config = json.loads((folder / "config.json").read_text())
        config["task"]["classes"].reverse()
        (folder / "config.json").write_text(json.dumps(config))
        expected = "config.json does not match its sha256"
    elif change == "edit-weights":
        data = bytearray((folder / "model.safetensors").read_bytes())
        data[-1] ^= 1
        (folder / "model.safetensors").write_bytes(bytes(data))
        expected = "model.safetensors does not match"
    elif change == "delete-plot":
        (folder / "plots" / "roc.png").unlink()
        expected = "plots/roc.png is missing"
    else:
        (folder / "extra.py").write_text("print('hi')")
        expected = "extra.py not listed"
    with pytest.raises(CheckpointError, match=expected):
        read_checkpoint(folder)


def test_pickle_checkpoints_are_refused(tmp_path, checkpoint):
    folder, _ = checkpoint
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    torch.save({"w": torch.ones(2)}, pickled / "pytorch_model.bin")
    (pickled / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="pytorch_model.bin is a pickle checkpoint"):
        read_checkpoint(pickled)
    torch.save({"w": torch.ones(2)}, folder / "model.pt")  # slipped into a real checkpoint
    with pytest.raises(CheckpointError, match="model.pt is a pickle checkpoint"):
        read_checkpoint(folder)
    with pytest.raises(CheckpointError, match="pickle"):
        write_checkpoint(
            tmp_path / "x", {"w": torch.ones(1)}, CONFIG, files={"weights.pth": folder / "model.pt"}
        )


def test_model_card_metadata_parses_and_renders(checkpoint):
    folder, _ = checkpoint
    card = ModelCard.load(folder / "README.md")
    meta = metadata_load(folder / "README.md")
    assert card.data.library_name == meta["library_name"] == "fusecpath"
    assert meta["license"] == "cc-by-nc-nd-4.0"  # Virchow2's, the most restrictive
    assert meta["base_model"] == ["paige-ai/Virchow2", "bioptimus/H-optimus-0"]  # built-ins have none
    assert {"pathology", "fusecpath", "virchow2", "h-optimus-0", "hed-stain", "task-classification"} <= set(
        meta["tags"]
    )
    assert "paige-ai/Virchow2" in meta["extra_gated_prompt"] and "bioptimus" not in meta["extra_gated_prompt"]
    assert meta["fusecpath"] == {"task": "classification", "fms": ["virchow2", "h-optimus-0", "hed-stain"]}
    body = card.text
    assert "| fusecpath | 0.880 ± 0.051 |" in body and "| abmil-concat | 0.710 ± 0.050 |" in body
    assert (
        "| virchow2 | patch | CC-BY-NC-ND-4.0 | yes |" in body
        and "| h-optimus-0 | patch | Apache-2.0 | no |" in body
    )
    assert (
        "- slides: 24" in body
        and "![roc](plots/roc.png)" in body
        and body.lstrip().startswith("# tp53-fused")
    )
    assert "pip install fusecpath fusecpath-plugin-bioptimus fusecpath-plugin-paige" in body


def test_licence_order():
    assert hub_licence("CC-BY-NC-ND 4.0") == "cc-by-nc-nd-4.0" and hub_licence("GPL-3.0") == "gpl-3.0"
    assert hub_licence("Apache-2.0 with conditions") == "other" and hub_licence(None) == "unknown"
    assert most_restrictive(["MIT", "Apache-2.0"]) == "apache-2.0"
    assert most_restrictive(["Apache-2.0", "GPL-3.0", "AGPL-3.0"]) == "agpl-3.0"
    assert most_restrictive(["AGPL-3.0", "CC-BY-NC-4.0"]) == "cc-by-nc-4.0"
    assert most_restrictive(["CC-BY-NC-SA-4.0", "CC-BY-NC-ND-4.0", "MIT"]) == "cc-by-nc-nd-4.0"
    assert most_restrictive(["CC-BY-NC-ND-4.0", "Owkin non-commercial"]) == "other"
    assert most_restrictive(["Owkin non-commercial", "unknown"]) == "unknown"
    custom = render_card(
        {
            "task": "regression",
            "fms": [
                {"name": "phikon", "license": "Owkin non-commercial", "source": "hf-hub:owkin/phikon"},
                {
                    "name": "uni",
                    "license": "CC-BY-NC-ND-4.0",
                    "source": "hf-hub:MahmoodLab/UNI",
                    "gated": True,
                },
            ],
        }
    )
    meta = ModelCard(custom).data.to_dict()
    assert (meta["license"], meta["license_name"], meta["license_link"]) == (
        "other",
        "owkin-non-commercial",
        "https://huggingface.co/owkin/phikon",
    )


def test_metrics_rows_shapes():
    columns, rows = metrics_rows({"fusecpath": {"auroc": {"mean": 0.9, "std": 0.1}, "n": 5, "note": "x"}})
    assert columns == ["auroc", "n"] and rows == [("fusecpath", ["0.900 ± 0.100", "5"])]


def test_mixin_save_and_from_pretrained(tmp_path):
    model = TinyModel({"dim": 8, "fms": FMS[2:], "task": "classification"})
    folder = model.save_pretrained(tmp_path / "tiny", metrics={"fusecpath": {"auroc": 0.5}})
    again = TinyModel.from_pretrained(folder)
    x = torch.randn(4, 8)
    assert not again.training and again.checkpoint_dir == folder
    assert torch.equal(model(x), again(x)) and again.config == model.config
    wrong = TinyModel({"dim": 3, "fms": FMS[2:], "task": "classification"})
    wrong.config["dim"] = 8
    wrong.save_pretrained(tmp_path / "wrong")
    with pytest.raises(CheckpointError, match="does not fit the architecture"):
        TinyModel.from_pretrained(tmp_path / "wrong")


def test_card_for_every_registered_fm_parses():
    from fusecpath.api import fm_records, list_encoders
    from fusecpath.checkpoint.card import LICENCE_ORDER

    specs = list_encoders()
    records = fm_records([s.name for s in specs])
    text = render_card({"task": "survival", "fms": records}, {"fusecpath": {"c_index": 0.7}})
    meta = ModelCard(text).data.to_dict()
    assert meta["license"] in LICENCE_ORDER and meta["license"] != "unknown"
    assert meta["license"] == most_restrictive([s.license for s in specs]) or meta["license"] == "other"
    assert set(meta["base_model"]) == {
        s.hub_repo for s in specs if s.origin.kind == "hf-model"
    }  # no datasets
    assert ("extra_gated_prompt" in meta) == any(s.gated for s in specs)
    for spec in specs:
        assert f"| {spec.name} | {spec.level} | {spec.license} |" in text
