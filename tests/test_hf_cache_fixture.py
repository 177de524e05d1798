"""The hf_cache fixture writes what huggingface_hub itself recognises as a cached download."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_the_client_reads_the_written_cache(hf_cache, tmp_path):
    from huggingface_hub import constants, hf_hub_download, scan_cache_dir, snapshot_download

    source = tmp_path / "weights.bin"
    source.write_bytes(b"\x00" * 10)
    snapshot = hf_cache("org/model", {"pytorch_model.bin": source, "sub/config.json": b"{}"})
    assert constants.HF_HUB_OFFLINE and Path(constants.HF_HUB_CACHE) in snapshot.parents

    (repo,) = scan_cache_dir(constants.HF_HUB_CACHE).repos
    assert repo.repo_id == "org/model" and repo.repo_type == "model"
    (revision,) = repo.revisions
    assert revision.refs == frozenset({"main"}) and revision.commit_hash == snapshot.name
    assert {f.file_name for f in revision.files} == {"pytorch_model.bin", "config.json"}

    path = Path(hf_hub_download("org/model", "pytorch_model.bin"))  # offline: served from the cache
    assert path == snapshot / "pytorch_model.bin" and path.read_bytes() == source.read_bytes()
    assert Path(snapshot_download("org/model")) == snapshot

    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    with pytest.raises((LocalEntryNotFoundError, OfflineModeIsEnabled)):
        hf_hub_download("org/model", "missing.bin")
