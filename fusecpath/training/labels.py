"""labels.csv: read and validate before any training. Each problem is one clear line.

- classification: ``slide_id,label[,patient_id]``
- survival: ``slide_id,time,event[,patient_id]`` (event 1 = observed, 0 = censored)
- regression: ``slide_id,<target>...[,patient_id]``
Without a patient_id column the patient is the first 12 characters of the slide id (TCGA).

Binary classification has a positive class (the one AUROC, F1 and the ROC curve are about): the
``positive=`` argument (``--positive``) names it, else a ``# positive: MUT`` line above the header, else it is
the second of the two classes sorted (``Labels.positive_from`` says which rule chose it).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusecpath.errors import FusecpathError
from fusecpath.training.folds import patient_of


class LabelsError(FusecpathError):
    """A labels.csv that cannot be trained on."""


@dataclass
class Labels:
    slide_ids: list[str]
    patients: np.ndarray  # (n,) str
    y: np.ndarray  # class index (n,), targets (n, T), or (n, 2) time, event
    kind: str
    classes: list[str]
    targets: list[str]
    positive: int | None = None  # binary classification: index of the positive class in ``classes``
    positive_from: str = ""  # what named it: "--positive", "the labels file" or "default"

    def positive_note(self) -> str:
        """One line saying which class is positive and why ('' unless binary classification)."""
        if self.positive is None:
            return ""
        name = self.classes[self.positive]
        if self.positive_from != "default":
            return f"positive class {name!r} (named by {self.positive_from})"
        return (
            f"positive class {name!r}: the second of {self.classes[0]!r}, {name!r} sorted, as nothing named one "
            "(name it with --positive or a '# positive: NAME' line atop the labels file)"
        )


def read_labels(
    path: str | Path,
    kind: str,
    available: set[str] | None = None,
    n_folds: int = 5,
    classes: list[str] | None = None,
    positive: str | None = None,
) -> Labels:
    """Parse and validate ``path``; ``available`` (slide ids with features) catches missing slides;
    ``positive`` names the positive class of a binary task."""
    path = Path(path)
    if not path.is_file():
        raise LabelsError(f"{path}: no such labels file")
    with open(path, newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    top = next((i for i, line in enumerate(lines) if not line.lstrip().startswith("#")), len(lines))
    directives = _directives(path, lines[:top])
    reader = csv.DictReader(lines[top:])
    header = [h.strip() for h in (reader.fieldnames or [])]
    rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    if "slide_id" not in header:
        raise LabelsError(f"{path}: needs a slide_id column (found: {', '.join(header) or 'no header'})")
    if not rows:
        raise LabelsError(f"{path}: no rows")
    value_cols = _value_columns(path, header, kind)
    ids = [row["slide_id"] for row in rows]
    if dup := [s for s, n in Counter(ids).items() if n > 1]:
        raise LabelsError(
            f"{path}: duplicate slide_id {dup[0]!r} ({len(dup)} duplicated ids); keep one row per slide"
        )
    if "" in ids:
        raise LabelsError(f"{path}: row {ids.index('') + 2} has an empty slide_id")
    if available is not None and (missing := [s for s in ids if s not in available]):
        raise LabelsError(
            f"{path}: {len(missing)} slides have no features or slide file, e.g. {missing[0]!r}; "
            "extract them or remove their rows"
        )
    patients = np.array([row.get("patient_id") or patient_of(row["slide_id"]) for row in rows])
    for i, row in enumerate(rows):
        for col in value_cols:
            if row.get(col, "").lower() in ("", "nan", "na", "none", "null"):
                raise LabelsError(
                    f"{path}: row {i + 2} (slide {row['slide_id']!r}) has no value in column {col!r}"
                )
    y, found_classes = _values(path, rows, kind, value_cols, classes)
    _check_patients(path, ids, patients, y)
    if kind == "classification":
        _check_class_counts(path, y, found_classes, patients, n_folds)
    elif len(np.unique(patients)) < n_folds:
        raise LabelsError(
            f"{path}: {len(np.unique(patients))} patients cannot make {n_folds} folds; use --folds less"
        )
    lab = Labels(ids, patients, y, kind, found_classes, value_cols if kind == "regression" else [])
    if kind == "classification" and len(found_classes) == 2:
        lab.positive, lab.positive_from = _positive(path, found_classes, positive, directives.get("positive"))
    elif positive is not None:
        raise LabelsError(f"--positive {positive!r}: only a binary classification has a positive class")
    return lab


def _directives(path: Path, lines: list[str]) -> dict[str, str]:
    """``# key: value`` (or ``# key = value``) lines above the header; only ``positive`` is known."""
    found: dict[str, str] = {}
    for line in lines:
        text = line.strip()
        key, sep, value = text.lstrip("#").replace("=", ":", 1).partition(":")
        if not sep:
            continue  # a plain comment
        if key.strip().lower() != "positive":
            raise LabelsError(
                f"{path}: unknown setting {key.strip()!r} in {text!r}; the known one is 'positive'"
            )
        found["positive"] = value.strip()
    return found


def _positive(path: Path, classes: list[str], option: str | None, in_file: str | None) -> tuple[int, str]:
    for name, source in ((option, "--positive"), (in_file, "the labels file")):
        if name is not None:
            if name not in classes:
                raise LabelsError(
                    f"{path}: positive class {name!r} (from {source}) is not a label; the labels are "
                    f"{', '.join(map(repr, classes))}"
                )
            return classes.index(name), source
    return 1, "default"


def _value_columns(path: Path, header: list[str], kind: str) -> list[str]:
    rest = [h for h in header if h not in ("slide_id", "patient_id")]
    needed = {"classification": ["label"], "survival": ["time", "event"]}.get(kind)
    if needed is None:
        if not rest:
            raise LabelsError(f"{path}: regression needs at least one target column after slide_id")
        return rest
    if missing := [c for c in needed if c not in header]:
        raise LabelsError(
            f"{path}: {kind} needs columns slide_id,{','.join(needed)}; missing {', '.join(missing)}"
        )
    return needed


def _number(path: Path, value: str, row: dict, col: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise LabelsError(f"{path}: slide {row['slide_id']!r}: {col} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise LabelsError(f"{path}: slide {row['slide_id']!r}: {col} is {value!r}; give a finite number")
    return number


def _values(path: Path, rows: list[dict], kind: str, cols: list[str], classes: list[str] | None):
    if kind == "classification":
        labels = [row["label"] for row in rows]
        found = sorted(set(labels), key=_natural)
        if classes is not None:
            if unknown := sorted(set(labels) - set(classes)):
                raise LabelsError(
                    f"{path}: unknown class {unknown[0]!r}; the model knows {', '.join(classes)}"
                )
            found = list(classes)
        if len(found) < 2:
            raise LabelsError(f"{path}: only one class ({found[0]!r}); classification needs at least two")
        index = {c: i for i, c in enumerate(found)}
        return np.array([index[label] for label in labels]), found
    values = np.array([[_number(path, row[c], row, c) for c in cols] for row in rows])
    if kind == "survival":
        if bad := [rows[i]["slide_id"] for i in np.flatnonzero(~np.isin(values[:, 1], (0, 1)))]:
            raise LabelsError(f"{path}: slide {bad[0]!r}: event must be 1 (observed) or 0 (censored)")
        if bad := [rows[i]["slide_id"] for i in np.flatnonzero(values[:, 0] < 0)]:
            raise LabelsError(f"{path}: slide {bad[0]!r}: time must not be negative")
        if values[:, 1].sum() == 0:
            raise LabelsError(f"{path}: no observed event (every event is 0); survival needs events")
    return values, []


def _natural(value: str):
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def _check_patients(path: Path, ids: list[str], patients: np.ndarray, y: np.ndarray) -> None:
    first: dict[str, int] = {}
    for i, patient in enumerate(patients):
        j = first.setdefault(patient, i)
        if not np.array_equal(y[i], y[j]):
            raise LabelsError(
                f"{path}: patient {str(patient)!r} has slides with different labels ({ids[j]!r}, {ids[i]!r}); "
                "one label per patient, or give distinct patient_id values"
            )


def _check_class_counts(
    path: Path, y: np.ndarray, classes: list[str], patients: np.ndarray, n_folds: int
) -> None:
    for c, name in enumerate(classes):
        n_patients = len(np.unique(patients[y == c]))
        if n_patients < n_folds:
            raise LabelsError(
                f"{path}: class {name!r} has {n_patients} patients, fewer than the {n_folds} folds; "
                "add slides or use --folds less"
            )
