"""The model card (README.md) of a fused checkpoint: Hub metadata in YAML front matter, then the body.

The card renders; the FM records it shows come from the registry layer (``fusecpath.api.config_fms``).

The licence is the most restrictive of the fused FMs' licences (``LICENCE_ORDER``); each FM's own licence is
listed in the body. The card is gated where any FM is gated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fusecpath.errors import SpecError
from fusecpath.zoo import Source

# Hub licence ids from least to most restrictive. A fused model is bound by all its FMs' terms; the card's
# ``license`` names the most restrictive one. Custom terms ("other") and unknown licences rank last: nothing
# less restrictive may be assumed of them.
LICENCE_ORDER = (
    "cc0-1.0",
    "mit",
    "bsd-3-clause",
    "apache-2.0",
    "cc-by-4.0",
    "cc-by-sa-4.0",
    "lgpl-3.0",
    "gpl-2.0",
    "gpl-3.0",
    "agpl-3.0",
    "cc-by-nc-4.0",
    "cc-by-nc-sa-4.0",
    "cc-by-nc-nd-4.0",
    "other",
    "unknown",
)
_GENERIC_TAGS = ("fusecpath", "pathology", "histopathology", "multiple-instance-learning")


def hub_licence(text: str | None) -> str:
    """A free-text licence ('Apache-2.0', 'CC-BY-NC-ND 4.0', 'Owkin non-commercial') as a Hub licence id."""
    key = re.sub(r"[\s_]+", "-", (text or "unknown").strip().lower())
    key = re.sub(r"-?v?(\d)\.?(\d)?$", lambda m: f"-{m.group(1)}.{m.group(2) or '0'}", key).replace("--", "-")
    if key in LICENCE_ORDER:
        return key
    if key in ("unknown", "", "none", "proprietary"):
        return "unknown"
    return "other"  # custom terms: "Apache-2.0 with conditions", "Owkin non-commercial", ...


def most_restrictive(licences: list[str | None]) -> str:
    """The Hub id of the most restrictive licence in ``licences`` ('unknown' for none)."""
    ids = [hub_licence(text) for text in licences] or ["unknown"]
    return max(ids, key=LICENCE_ORDER.index)


def _source(record: Mapping[str, Any]) -> Source | None:
    """The record's parsed source (None for one this version cannot read, e.g. from an old config)."""
    try:
        return Source.parse(str(record.get("source") or "builtin"))
    except SpecError:
        return None


def _hub_repo(record: Mapping[str, Any]) -> str | None:
    """The Hub model repo of a record (a dataset repo is no ``base_model``)."""
    source = _source(record)
    return source.repo_id if source and source.kind == "hf-model" else None


def _page(record: Mapping[str, Any]) -> str | None:
    source = _source(record)
    return source.page if source else None


def task_of(config: Mapping[str, Any]) -> str:
    task = config.get("task")
    if isinstance(task, Mapping):
        task = task.get("kind") or task.get("type") or task.get("name")
    return str(task or "unknown")


def card_metadata(config: Mapping[str, Any], fms: list[dict[str, Any]]) -> dict[str, Any]:
    """The YAML front matter, as a dict."""
    licence = most_restrictive([fm.get("license") for fm in fms])
    task = task_of(config)
    data: dict[str, Any] = {
        "library_name": "fusecpath",
        "license": licence,
        "tags": list(dict.fromkeys([*_GENERIC_TAGS, f"task-{task}", *(fm["name"] for fm in fms)])),
    }
    if licence in ("other", "unknown"):
        strictest = [fm for fm in fms if hub_licence(fm.get("license")) == licence]
        data["license"] = "other"
        data["license_name"] = re.sub(
            r"[^a-z0-9.-]+", "-", str(strictest[0].get("license", "unknown")).lower()
        )
        data["license_link"] = _page(strictest[0]) or "LICENSE"
    base = [repo for fm in fms if (repo := _hub_repo(fm))]
    if base:
        data["base_model"] = base
    gated = [fm for fm in fms if fm.get("gated")]
    if gated:
        names = ", ".join(
            f"{fm['name']} ({_source(fm).ref if _source(fm) else fm.get('source', '?')})" for fm in gated
        )
        data["extra_gated_prompt"] = (
            f"This model was fused from gated foundation models: {names}. Its use is bound by each one's terms: "
            "request access to every one of them on its own page before using this model."
        )
        data["extra_gated_fields"] = {
            "I have been granted access to every foundation model this model fuses": "checkbox",
        }
    data["fusecpath"] = {"task": task, "fms": [fm["name"] for fm in fms]}
    return data


def _cell(value: Any) -> str:
    if isinstance(value, Mapping) and "mean" in value:
        std = value.get("std")
        return _cell(value["mean"]) + (f" ± {_number(std)}" if isinstance(std, (int, float)) else "")
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        mean = sum(value) / len(value)
        std = math.sqrt(sum((v - mean) ** 2 for v in value) / len(value))
        return f"{_number(mean)} ± {_number(std)}"
    return _number(value) if isinstance(value, (int, float)) else str(value)


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def metrics_rows(metrics: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(metric names, [(method, cells)]): methods are the entries whose values are metric mappings.

    Accepts ``{"methods": {name: {metric: value}}}`` or ``{name: {metric: value}}``; a value is a number, a
    ``{"mean", "std"}`` mapping or a list of fold values. ``_mean``/``_std`` suffix pairs are merged.
    """
    table = metrics.get("methods", metrics)
    methods: list[tuple[str, dict[str, Any]]] = []
    for name, values in table.items():
        if isinstance(values, Mapping) and values:
            merged: dict[str, Any] = {}
            for key, value in values.items():
                if key.endswith("_std") and f"{key[:-4]}_mean" in values:
                    continue
                if key.endswith("_mean"):
                    base = key[:-5]
                    merged[base] = {"mean": value, "std": values.get(f"{base}_std")}
                elif isinstance(value, (int, float, list, Mapping)) and not isinstance(value, bool):
                    merged[key] = value
            if merged:
                methods.append((str(name), merged))
    columns = list(dict.fromkeys(k for _, values in methods for k in values))
    return columns, [
        (name, [_cell(values[c]) if c in values else "" for c in columns]) for name, values in methods
    ]


def render_card(
    config: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
    images: list[str] | None = None,
) -> str:
    """README.md text: front matter rendered by huggingface_hub's ModelCardData, then the body.

    ``images`` are paths inside the checkpoint (plots) shown under the results.
    """
    from huggingface_hub import ModelCardData

    from fusecpath.api import config_fms

    fms = config_fms(config)
    meta = card_metadata(config, fms)
    front = ModelCardData(**meta).to_yaml()
    repo = repo_id or "ORG/NAME"
    task = task_of(config)
    patch = [fm["name"] for fm in fms if fm.get("level", "patch") == "patch"]
    slide = [fm["name"] for fm in fms if fm.get("level") == "slide"]
    teachers = (
        (
            f"; the slide foundation models {', '.join(slide)} taught it by collaborative distillation "
            "(they are needed to re-train it, not to predict)"
        )
        if slide
        else ""
    )
    lines = [f"---\n{front}\n---", "", f"# {repo_id or config.get('name') or 'fusecpath fused model'}", ""]
    lines += [
        f"A fused pathology model ({task}) built with [fusecpath](https://github.com/fusecpath/fusecpath) by "
        "the FuseCPath method (arXiv 2510.27237): multi-view clustering of each slide's patches, then a "
        f"cluster-level re-embedding transformer over the features of {', '.join(patch)}{teachers}.",
        "",
    ]
    classes = (config.get("task") or {}).get("classes") if isinstance(config.get("task"), Mapping) else None
    classes = classes or config.get("classes")
    if classes:
        lines += [f"Classes: {', '.join(map(str, classes))}.", ""]
    lines += [
        "## Foundation models",
        "",
        "| model | level | licence | gated | weights | plugin | fingerprint |",
        "|---|---|---|---|---|---|---|",
    ]
    for fm in fms:
        source, page = _source(fm), _page(fm)
        weights = f"[{source.ref}]({page})" if source and page else str(fm.get("source", ""))
        lines.append(
            f"| {fm['name']} | {fm.get('level', '')} | {fm.get('license', 'unknown')} | "
            f"{'yes' if fm.get('gated') else 'no'} | {weights} | {fm.get('plugin', '')} | "
            f"`{fm.get('fingerprint', '')}` |"
        )
    lines += [
        "",
        f"**Licence: {meta.get('license_name', meta['license'])}**, the most restrictive of the "
        "foundation models' licences above: using this model means complying with every one of them.",
        "",
    ]
    if metrics:
        columns, rows = metrics_rows(metrics)
        if rows:
            folds = metrics.get("folds") or metrics.get("n_folds")
            how = f"{folds}-fold cross-validation" if isinstance(folds, int) else "cross-validation"
            same = "; baselines ran on the same folds" if len(rows) > 1 else ""
            lines += [
                "## Results",
                "",
                f"Mean ± std over {how}, split by patient{same}.",
                "",
                "| method | " + " | ".join(columns) + " |",
                "|---" * (len(columns) + 1) + "|",
            ]
            lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows]
            lines.append("")
    lines += [f"![{Path(image).stem}]({image})\n" for image in images or []]
    cohort = config.get("cohort")
    if isinstance(cohort, Mapping) and cohort:
        lines += ["## Training cohort", ""]
        lines += [f"- {key}: {value}" for key, value in cohort.items()]
        lines.append("")
    plugins = sorted({fm["plugin"] for fm in fms if fm.get("plugin") and fm["plugin"] != "fusecpath"})
    lines += [
        "## How to use",
        "",
        "```bash",
        " ".join(["pip install fusecpath", *plugins]),
        f"fusecpath pull {repo}",
        f"fusecpath predict slides/ --model {repo} --out predictions/",
        "```",
        "",
        "`predict` checks that the installed foundation models are the ones this model was fused from "
        "(same spec fingerprints), extracts their features, scores every bag of each slide and writes "
        "predictions.csv with an attention heatmap (PNG and QuPath GeoJSON) per slide.",
        "",
        "Weights are safetensors; `SHA256SUMS` lists the sha256 of every file and is verified on load.",
        "",
    ]
    return "\n".join(lines)
