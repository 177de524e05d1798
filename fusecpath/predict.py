"""``fusecpath predict``: a fused model (a run folder, a checkpoint or a Hub repo) on new slides.

1. load the checkpoint (checksums verified) and check that every FM it fused is installed with the same
   spec fingerprint, else refuse with the reason;
2. extract the FMs' features into ``OUT/features`` (the ordinary feature store: re-runs reuse it);
3. per slide: cluster, score every bag, average (the fusion engine's prediction), and per-patch attention;
4. write ``predictions.csv`` and, per slide, ``heatmaps/<slide>.png`` and ``heatmaps/<slide>.geojson``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusecpath.errors import FusecpathError

SLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide",
                  ".dcm", ".png", ".jpg", ".jpeg")


class ModelMismatchError(FusecpathError):
    """The installed FMs are not the ones the model was fused from."""


def find_slides(inputs: list[str | Path]) -> list[Path]:
    """Slide files named, or found (sorted, not recursive) in the folders named; one id per slide."""
    from fusecpath.slides import slide_id

    slides: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.name.lower().endswith(SLIDE_SUFFIXES)
                           and not p.name.startswith("."))
            if not found:
                raise FusecpathError(f"{item}: no slide files ({', '.join(SLIDE_SUFFIXES[:4])}, ...) in it")
            slides += found
        elif item.is_file():
            slides.append(item)
        else:
            raise FusecpathError(f"{item}: no such slide file or folder")
    ids: dict[str, Path] = {}
    for path in slides:
        if slide_id(path) in ids and ids[slide_id(path)] != path:
            raise FusecpathError(f"{path} and {ids[slide_id(path)]} have the same slide id {slide_id(path)!r}; "
                                 "rename one")
        ids[slide_id(path)] = path
    return list(ids.values())


def check_fms(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The config's FMs, each installed with the fingerprint the model was fused with; else refuse."""
    from fusecpath.hub.remote import requirements

    rows = requirements(config)
    problems = [row["problem"] for row in rows if not row["ok"]]
    if problems:
        raise ModelMismatchError("the model cannot run here: " + "; ".join(problems))
    return rows


@dataclass
class Written:
    slide_id: str
    heatmap: Path
    geojson: Path


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_predictions(path: Path, rows: list[dict[str, Any]]) -> Path:
    """predictions.csv: one row per slide, columns in first-seen order."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_text(path, buffer.getvalue())
    return path


def report_json(rows: list[dict[str, Any]], written: list[Written], out: Path, model: str) -> str:
    files = {w.slide_id: {"heatmap": str(w.heatmap), "geojson": str(w.geojson)} for w in written}
    return json.dumps({"model": model, "out": str(out), "predictions": str(out / "predictions.csv"),
                       "slides": [{**row, **files.get(row["slide_id"], {})} for row in rows]}, indent=2)
