"""``--shard I/N``: a deterministic split of a slide list for SLURM/LSF job arrays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fusecpath.errors import FusecpathError


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> (2, 8); shards count from 0 (SLURM_ARRAY_TASK_ID with --array=0-7)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise FusecpathError(f"--shard {text!r}: use I/N, e.g. --shard 0/8 (I counts from 0)") from None
    if count < 1 or not 0 <= index < count:
        raise FusecpathError(f"--shard {text!r}: I must be in 0..N-1 and N at least 1")
    return index, count


def take_shard(paths: Sequence[Path], shard: str | None) -> list[Path]:
    """The slides of shard I of N: every N-th slide of the list sorted by file name, starting at I.

    Every shard sees the same sorted list, so the N shards are disjoint, cover every slide, and differ
    in size by at most one; each shard resumes through the feature store like a whole run.
    """
    if shard is None:
        return list(paths)
    index, count = parse_shard(shard)
    return sorted(paths, key=lambda p: (Path(p).name, str(p)))[index::count]
