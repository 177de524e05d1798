"""Gated repos, missing tokens and no network: one line naming the URL and the login command.

The real huggingface_hub client talks to a small HTTP server on 127.0.0.1 that answers as the Hub does
for a gated repo (403, X-Error-Code: GatedRepo) and for a repo that needs a token (401, RepoNotFound).
The client reads HF_ENDPOINT at import, so each case runs in a fresh interpreter. No network is tested
offline (HF_HUB_OFFLINE=1, empty cache): an unreachable endpoint maps to the same error, after the
client's own retries (about 25 s), too slow for the suite.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

import fusecpath
from fusecpath.encoders import TIMM_VIT
from fusecpath.errors import WeightsError
from fusecpath.zoo import EncoderSpec

TOKEN = "hf_fusecpathTestTokenNeverPrinted0123456789"
SPEC = dict(
    level="patch",
    embed_dim=8,
    **TIMM_VIT,
    weights_file="pytorch_model.bin",
    gated=True,
)


class FakeHub(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        if "/gated-model/" in self.path:
            self.send_response(403)
            self.send_header("X-Error-Code", "GatedRepo")
            self.send_header("X-Error-Message", "Access to model org/gated-model is restricted.")
        else:
            self.send_response(401)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("X-Error-Message", "Repository not found")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def hub_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _resolve_in_fresh_process(repo: str, endpoint: str, tmp_path, token: str | None) -> str:
    code = (
        "import json, sys\n"
        "from fusecpath.zoo import EncoderSpec\n"
        "from fusecpath.encoders.weights import resolve_weights\n"
        "from fusecpath.errors import FusecpathError\n"
        f"spec = EncoderSpec(name='access-test', source='hf-hub:{repo}', **json.loads(sys.argv[1]))\n"
        "try:\n"
        "    resolve_weights(spec)\n"
        "except FusecpathError as exc:\n"
        "    print('fusecpath: error:', exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FUSECPATH_"))}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HUB_CACHE=str(tmp_path / "cache"),
        HF_HOME=str(tmp_path / "home"),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_ETAG_TIMEOUT="5",
        FUSECPATH_CONFIG=str(tmp_path / "none.toml"),
    )
    if token:
        env["HF_TOKEN"] = token
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(SPEC)], capture_output=True, text=True, env=env, timeout=120
    )
    assert TOKEN not in out.stdout + out.stderr
    assert out.stdout.startswith("fusecpath: error:"), out.stdout + out.stderr
    return out.stdout.strip()


def test_gated_repo_without_access(hub_url, tmp_path):
    line = _resolve_in_fresh_process("org/gated-model", hub_url, tmp_path, token=TOKEN)
    assert "\n" not in line
    assert "https://huggingface.co/org/gated-model" in line and "`hf auth login`" in line and "gated" in line


def test_missing_token(hub_url, tmp_path):
    line = _resolve_in_fresh_process("org/private-model", hub_url, tmp_path, token=None)
    assert "\n" not in line
    assert "`hf auth login`" in line and "https://huggingface.co/org/private-model" in line


def test_offline_with_empty_cache(hf_cache, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    spec = EncoderSpec(name="access-test", source="hf-hub:org/gated-model", **SPEC)
    with pytest.raises(WeightsError) as excinfo:
        fusecpath.load_encoder(spec)
    line = str(excinfo.value)
    assert "\n" not in line and TOKEN not in line
    assert "https://huggingface.co/org/gated-model" in line and "`hf auth login`" in line
    assert "FUSECPATH_WEIGHTS_ACCESS_TEST=PATH" in line
