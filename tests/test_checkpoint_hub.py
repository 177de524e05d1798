"""push / pull / hub search through the CLI, with the real huggingface_hub client against tests/hubserver.py.

The client reads HF_ENDPOINT and HF_HUB_DISABLE_XET when it is imported, so every command runs in a fresh
process with its own Hugging Face home and cache.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from fusecpath.checkpoint import write_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from hubserver import Cli, HubServer, leaks  # noqa: E402

TOKEN = "hf_testtoken_5f2c9a81d3e4b7c6a0"
OTHER = "hf_othertoken_0b1c2d3e4f5a6b7c8d"
USERS = {TOKEN: ("alice", ("lab",)), OTHER: ("bob", ())}


@pytest.fixture
def hub(tmp_path):
    with HubServer(tmp_path / "server", USERS) as server:
        yield server


def fms(*names: str) -> list[dict]:
    from fusecpath.api import fm_records

    return fm_records(list(names))


def make_checkpoint(folder: Path, records: list[dict], files: dict | None = None) -> Path:
    config = {
        "task": {"kind": "classification", "classes": ["a", "b"]},
        "fms": records,
        "cohort": {"slides": 8, "source": "synthetic"},
    }
    state = {"w": torch.randn(64, 64), "b": torch.zeros(64)}
    return write_checkpoint(folder, state, config, {"methods": {"fusecpath": {"auroc": [0.8, 0.9]}}}, files)


@pytest.fixture
def cli(hub, tmp_path):
    runner = Cli(hub, tmp_path, TOKEN)
    yield runner
    assert not leaks(runner, tmp_path, (TOKEN, OTHER)), "a token was printed or written"


def test_push_pull_offline_and_search(tmp_path, hub, cli):
    folder = make_checkpoint(tmp_path / "run" / "model", fms("hed-stain", "gabor-texture"))
    push = cli("push", str(tmp_path / "run"), "--repo", "lab/tp53")
    assert push.returncode == 0, push.stderr
    assert push.stdout.strip() == f"{hub.url}/lab/tp53"
    methods = [(m, p) for m, p, _ in hub.state.requests]
    assert ("POST", "/lab/tp53.git/info/lfs/objects/batch") in methods  # weights went through LFS
    assert sum(p == "/api/models/lab/tp53/commit/main" for _, p in methods) == 1  # one commit

    pull = cli("pull", "lab/tp53", "--json", home="fresh")  # an empty cache
    assert pull.returncode == 0, pull.stderr
    report = json.loads(pull.stdout)
    snapshot = Path(report["directory"])
    assert snapshot.is_relative_to(tmp_path / "fresh") and report["files"] == 4
    assert [(f["name"], f["ok"], f["plugin"]) for f in report["fms"]] == [
        ("hed-stain", True, "fusecpath"),
        ("gabor-texture", True, "fusecpath"),
    ]
    cdn = [
        auth for method, path, auth in hub.state.requests if method == "GET" and path.startswith("/cdn-lfs/")
    ]
    assert cdn == [False]  # the weights came from the "CDN" host, and the token was not sent there
    for name in ("model.safetensors", "config.json", "metrics.json"):
        assert (snapshot / name).read_bytes() == (folder / name).read_bytes()
    assert "fusecpath pull lab/tp53" in (snapshot / "README.md").read_text()

    hub.__exit__()  # the Hub goes away: the cache is enough
    offline = cli("pull", "lab/tp53", home="fresh", HF_HUB_OFFLINE="1")
    assert offline.returncode == 0, offline.stderr
    assert (
        "4 files verified" in offline.stdout and "hed-stain (patch, plugin fusecpath): ok" in offline.stdout
    )
    gone = cli("pull", "lab/tp53", home="other")
    assert gone.returncode == 1
    assert gone.stderr.strip().splitlines() == [gone.stderr.strip()] and "cannot be reached" in gone.stderr


def test_search_lists_fused_models(tmp_path, hub, cli):
    (tmp_path / "roc.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    make_checkpoint(tmp_path / "old", fms("hed-stain"), {"plots/roc.png": tmp_path / "roc.png"})
    make_checkpoint(tmp_path / "a", fms("hed-stain", "random-cnn"))
    make_checkpoint(tmp_path / "b", fms("gabor-texture"))
    assert cli("push", str(tmp_path / "old"), "--repo", "lab/kras").returncode == 0
    assert cli("push", str(tmp_path / "a"), "--repo", "lab/kras").returncode == 0  # replaces it whole
    repo = hub.state.repos["lab/kras"]
    assert sorted(repo.commits[repo.branches["main"]].files) == [
        ".gitattributes",
        "README.md",
        "SHA256SUMS",
        "config.json",
        "metrics.json",
        "model.safetensors",
    ]
    assert cli("pull", "lab/kras").returncode == 0
    assert cli("push", str(tmp_path / "b"), "--repo", "alice/egfr", "--private").returncode == 0
    found = cli("hub", "search", "--json")
    rows = {row["id"]: row for row in json.loads(found.stdout)}
    assert (
        rows["lab/kras"]["fms"] == ["hed-stain", "random-cnn"]
        and rows["lab/kras"]["task"] == "classification"
    )
    assert "alice/egfr" in rows  # private, but alice's token may see it
    anonymous = cli("hub", "search", "kras", "--json", token=None)
    assert [row["id"] for row in json.loads(anonymous.stdout)] == ["lab/kras"]
    table = cli("hub", "search", "kras")
    assert "lab/kras" in table.stdout and "classification" in table.stdout
    private = cli("pull", "alice/egfr", token=OTHER)
    assert private.returncode == 1 and "repository not found, or private" in private.stderr


def test_push_failures_are_one_line_and_commit_nothing(tmp_path, hub, cli):
    make_checkpoint(tmp_path / "ck", fms("hed-stain"))
    no_token = cli("push", str(tmp_path / "ck"), "--repo", "lab/x", token=None)
    assert no_token.returncode == 1 and no_token.stderr.startswith("fusecpath: error: no Hugging Face token")
    forbidden = cli("push", str(tmp_path / "ck"), "--repo", "lab/x", token=OTHER)
    assert forbidden.returncode == 1 and "refused it (HTTP 403)" in forbidden.stderr
    assert "lab/x" not in hub.state.repos
    hub.state.fail_commit = True  # the Hub fails after the LFS upload, at the commit
    broken = cli("push", str(tmp_path / "ck"), "--repo", "lab/x")
    assert broken.returncode == 1 and "nothing was committed" in broken.stderr and "HTTP 500" in broken.stderr
    repo = hub.state.repos["lab/x"]
    assert list(repo.commits[repo.branches["main"]].files) == [".gitattributes"]
    for run in (no_token, forbidden, broken):
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    retry = cli("push", str(tmp_path / "ck"), "--repo", "lab/x", "--revision", "v1")
    assert retry.returncode == 0 and retry.stdout.strip().endswith("/lab/x/tree/v1")
    hub.__exit__()
    down = cli("push", str(tmp_path / "ck"), "--repo", "lab/x")
    assert down.returncode == 1 and "cannot reach the Hub" in down.stderr


def test_pull_checks_fms_gating_and_tampering(tmp_path, hub, cli):
    records = fms("hed-stain", "gabor-texture")
    records[1]["fingerprint"] = "0123456789abcdef"  # fused with another version of gabor-texture
    records.append(
        {
            "name": "uni",
            "level": "patch",
            "fingerprint": "f" * 16,
            "license": "CC-BY-NC-ND-4.0",
            "gated": True,
            "source": "hf-hub:MahmoodLab/UNI",
            "plugin": "fusecpath-plugin-mahmoodlab",
        }
    )
    make_checkpoint(tmp_path / "ck", records)
    assert cli("push", str(tmp_path / "ck"), "--repo", "lab/gated").returncode == 0
    assert hub.state.repos["lab/gated"].gated == "auto"  # gated before the upload, as UNI is
    anonymous = cli("pull", "lab/gated", token=None)
    assert anonymous.returncode == 1 and "gated" in anonymous.stderr
    only_builtins = {"FUSECPATH_LOAD_PLUGINS": ""}  # as if the mahmoodlab plugin were not installed
    pull = cli("pull", "lab/gated", "--out", str(tmp_path / "copy"), "--json", **only_builtins)
    assert pull.returncode == 0, pull.stderr
    rows = {row["name"]: row for row in json.loads(pull.stdout)["fms"]}
    assert rows["hed-stain"]["ok"]
    assert "a different version of the model" in rows["gabor-texture"]["problem"]
    assert (
        rows["uni"]["install"] == "pip install fusecpath-plugin-mahmoodlab" and not rows["uni"]["installed"]
    )
    assert (tmp_path / "copy" / "SHA256SUMS").is_file()
    text = cli("pull", "lab/gated", **only_builtins)
    assert (
        "uni (patch, plugin fusecpath-plugin-mahmoodlab): uni is not installed: "
        "`pip install fusecpath-plugin-mahmoodlab`" in text.stdout
    )

    config_blob = (Path(json.loads(pull.stdout)["directory"]) / "config.json").resolve()  # the cached blob
    config_blob.write_text(config_blob.read_text().replace('"a"', '"c"'))  # tamper with the cached file
    tampered = cli("pull", "lab/gated", HF_HUB_OFFLINE="1")
    assert tampered.returncode == 1 and "config.json does not match its sha256" in tampered.stderr
    healed = cli("pull", "lab/gated", **only_builtins)  # online: the damaged cache is downloaded again
    assert healed.returncode == 0 and "files verified" in healed.stdout, healed.stderr
    assert '"a"' in (Path(json.loads(pull.stdout)["directory"]) / "config.json").read_text()


def test_leak_check_finds_tokens(tmp_path, hub):
    runner = Cli(hub, tmp_path, TOKEN)
    runner.outputs.append(f"debug: Authorization: Bearer {TOKEN}")
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "log.txt").write_text(f"token={OTHER}")
    assert leaks(runner, tmp_path, (TOKEN, OTHER)) == [
        "output of command 0",
        str(tmp_path / "deep" / "log.txt"),
    ]


MIXIN = """
import sys, torch
from fusecpath.checkpoint import CheckpointMixin

class Tiny(CheckpointMixin, torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.fc = torch.nn.Linear(4, 2)

    @classmethod
    def from_config(cls, config):
        return cls(config)

    def forward(self, x):
        return self.fc(x)

x = torch.linspace(-1, 1, 8).reshape(2, 4)
if sys.argv[1] == "push":
    torch.manual_seed(0)
    model = Tiny({"task": "classification", "fms": [{"name": "hed-stain"}]})
    print(model.push_to_hub("lab/tiny", revision="v1"))
    print(model(x).tolist())
else:
    print(Tiny.from_pretrained("lab/tiny", revision="v1")(x).tolist())
"""


def test_mixin_push_to_hub_and_from_pretrained(hub, cli):
    pushed = cli.python("-c", MIXIN, "push")
    assert pushed.returncode == 0, pushed.stderr
    url, outputs = pushed.stdout.splitlines()
    assert url == f"{hub.url}/lab/tiny/tree/v1"
    loaded = cli.python("-c", MIXIN, "load", home="fresh", token=None)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == outputs
