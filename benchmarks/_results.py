"""The shared shape of benchmarks/results/<script>.json (rendered into docs/results.md)."""

from __future__ import annotations

import datetime as dt
import json
import platform
import sys
from pathlib import Path

from fusecpath.files import write_atomic


def write_results(script: str, title: str, sections: list[dict]) -> Path:
    path = Path(__file__).parent / "results" / f"{Path(script).stem}.json"
    record = {
        "title": title,
        "command": "python " + " ".join([f"benchmarks/{Path(script).name}", *sys.argv[1:]]),
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {platform.node()}".strip(),
        "sections": sections,
    }
    return write_atomic(path, json.dumps(record, indent=1) + "\n")
