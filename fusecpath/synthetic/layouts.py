"""Writing one synthetic slide's features as TRIDENT writes them, or as this project's feature store.

The TRIDENT layout follows TRIDENT's own writer (its ``save_h5``): each dataset is chunked by rows
(``(1, ...)``) and resizable along the first axis, dictionaries in attributes are JSON and ``None``
is the string ``"None"``. Patch-feature files hold ``features`` (attrs ``name``, ``savetodir``,
``encoder``) and ``coords`` (TRIDENT's patching attributes); slide-feature files hold ``features``
(D,) (attrs ``name``, ``savetodir``) and the same ``coords``; ``patches/<slide>_patches.h5`` holds
``coords`` alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fusecpath.files import write_with


def trident_run_name(magnification: int, patch_px: int, overlap: int = 0) -> str:
    """TRIDENT's name for a patching run's folder, e.g. ``20x_256px_0px_overlap``."""
    return f"{magnification}x_{patch_px}px_{overlap}px_overlap"


def _attr_value(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value)
    return "None" if value is None else value


def write_trident_h5(path: Path, assets: Mapping[str, tuple[np.ndarray, Mapping[str, Any]]]) -> Path:
    """One HDF5 file of ``name -> (array, attributes)``, laid out as TRIDENT lays out its files."""
    import h5py

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            for name, (array, attrs) in assets.items():
                array = np.asarray(array)
                dataset = f.create_dataset(
                    name,
                    shape=array.shape,
                    maxshape=(None, *array.shape[1:]),
                    chunks=(1, *array.shape[1:]),
                    dtype=array.dtype,
                )
                dataset[:] = array
                for key, value in attrs.items():
                    dataset.attrs[key] = _attr_value(value)

    return write_with(path, write)


def write_trident_slide(
    run_dir: Path,
    slide_id: str,
    coords: np.ndarray,
    coords_attrs: Mapping[str, Any],
    patch: Mapping[str, np.ndarray],
    slide: Mapping[str, np.ndarray],
) -> list[Path]:
    """A slide's coords, patch features and slide features under a TRIDENT run folder; ``patch`` and
    ``slide`` are keyed by TRIDENT encoder name. Returns the files written."""
    coords = np.asarray(coords, dtype=np.int64)
    run_attrs = {**coords_attrs, "name": slide_id, "savetodir": str(run_dir)}
    written = [
        write_trident_h5(run_dir / "patches" / f"{slide_id}_patches.h5", {"coords": (coords, run_attrs)})
    ]
    for encoder, features in patch.items():
        folder = run_dir / f"features_{encoder}"
        attrs = {"name": slide_id, "savetodir": str(folder), "encoder": encoder}
        written.append(
            write_trident_h5(
                folder / f"{slide_id}.h5",
                {"features": (features.astype(np.float32), attrs), "coords": (coords, run_attrs)},
            )
        )
    for encoder, features in slide.items():
        folder = run_dir / f"slide_features_{encoder}"
        attrs = {"name": slide_id, "savetodir": str(folder)}
        written.append(
            write_trident_h5(
                folder / f"{slide_id}.h5",
                {"features": (features.astype(np.float32).reshape(-1), attrs), "coords": (coords, run_attrs)},
            )
        )
    return written


def write_store_slide(
    store: Path,
    slide_id: str,
    coords: np.ndarray,
    coords_attrs: Mapping[str, Any],
    patch: Mapping[str, np.ndarray],
    slide: Mapping[str, np.ndarray],
    root_attrs: Mapping[str, Any] | None = None,
) -> Path:
    """A slide in this project's feature-store format; ``patch`` and ``slide`` keyed by zoo name, each
    stored with the installed spec's fingerprint."""
    from fusecpath.api import get_spec
    from fusecpath.features.store import FORMAT, VERSION, feature_path, updating

    fingerprints = {fm: get_spec(fm).fingerprint() for fm in [*patch, *slide]}
    path = feature_path(store, slide_id)
    with updating(path, fresh=True) as out:
        out.attrs.update(format=FORMAT, version=VERSION, slide_id=slide_id, **dict(root_attrs or {}))
        out.create_dataset("coords", data=np.asarray(coords, dtype=np.int64))
        out["coords"].attrs.update({k: _attr_value(v) for k, v in coords_attrs.items()})
        for level, table in (("patch", patch), ("slide", slide)):
            for fm, features in table.items():
                name = f"{level}/{fm}"
                data = features.astype(np.float32)
                out.create_dataset(name, data=data.reshape(-1) if level == "slide" else data)
                out[name].attrs.update(fingerprint=fingerprints[fm], embed_dim=int(data.shape[-1]))
    return path
