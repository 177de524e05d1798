"""The feature store: one HDF5 file a slide.

Layout (format ``fusecpath-features`` version 1)::

    /            attrs: format, version, slide_id
    coords       (N, 2) int64, top-left corners of the patch grid at level 0; attrs: mpp, read_px,
                 patch_size_level0, slide_mpp, slide_width, slide_height, slide_checksum, slide_path, ...
    patch/<fm>   (N, D) float32; attrs: fingerprint (the spec's), embed_dim, mpp, read_px, ...
    slide/<fm>   (D,) float32; attrs: fingerprint, requires
    <other>      anything added with ``write_arrays`` (e.g. ``clusters/<key>``)

Every change builds a temporary file next to the target (``.<name>.<pid>.tmp``) and renames it into
place, so readers never see a half-written file. A lock file (``<name>.lock``, holding the writer's
PID and host) keeps two processes off one slide; a lock whose process is dead is cleared.
TRIDENT's and CLAM's files (``features`` + ``coords``) are read as they are, one at a time here, and
TRIDENT's job folders (one file per FM and slide) by :mod:`fusecpath.features.trident`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fusecpath.errors import FusecpathError
from fusecpath.files import replacing

FORMAT = "fusecpath-features"
VERSION = 1
_ENCODER_ATTRS = ("encoder", "encoder_name", "enc_name", "model_name", "patch_encoder", "fm")


class StoreError(FusecpathError):
    """A feature file that is missing, unreadable or not a feature file."""


class SlideLockedError(StoreError):
    """Another live process is writing this slide's feature file."""


def feature_path(out_dir: str | Path, slide_id: str) -> Path:
    """Where a slide's features live: ``out_dir / f"{slide_id}.h5"``."""
    return Path(out_dir) / f"{slide_id}.h5"


def lock_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".lock")


# ---------------------------------------------------------------------------------------------- locks


def _lock_owner(lock: Path) -> tuple[int | None, str | None]:
    try:
        pid, _, host = lock.read_text().strip().partition(" ")
        return int(pid), host or None
    except (OSError, ValueError):
        return None, None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(lock: Path) -> bool:
    pid, host = _lock_owner(lock)
    if pid is None:  # empty or garbled: a writer killed between create and write, or one just starting
        try:
            return time.time() - lock.stat().st_mtime > 10.0
        except FileNotFoundError:
            return False
    return host == socket.gethostname() and not _pid_alive(pid)


@contextlib.contextmanager
def slide_lock(path: str | Path, wait: float = 0.0) -> Iterator[None]:
    """Hold ``<path>.lock`` while the block runs; clears a dead process's lock and its temporary files.

    Waits up to ``wait`` seconds for a live holder, then raises SlideLockedError.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_path(path)
    deadline = time.monotonic() + wait
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _is_stale(lock):
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                continue
            if time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            pid, host = _lock_owner(lock)
            raise SlideLockedError(
                f"{path.name} is being written by process {pid} on {host}; wait for it to finish, "
                f"or delete {lock} if that process is gone"
            ) from None
        break
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()} {socket.gethostname()}\n")
        for orphan in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed writer
            orphan.unlink(missing_ok=True)
        yield
    finally:
        if _lock_owner(lock)[0] == os.getpid():
            lock.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- writes


def _dropped(name: str, drop: Iterable[str]) -> bool:
    return any(name == d or name.startswith(d.rstrip("/") + "/") for d in drop)


def _copy_except(src: h5py.File, dst: h5py.File, drop: set[str]) -> None:
    """Copy every group, dataset and attribute of ``src`` into ``dst`` except the ``drop`` paths."""
    dst.attrs.update(dict(src.attrs))

    def visit(name: str, obj: h5py.HLObject) -> None:
        if _dropped(name, drop):
            return
        if isinstance(obj, h5py.Group):
            dst.require_group(name).attrs.update(dict(obj.attrs))
        else:
            parent = name.rpartition("/")[0]
            if parent:
                dst.require_group(parent)
            src.copy(obj, dst, name=name)

    src.visititems(visit)


@contextlib.contextmanager
def updating(
    path: str | Path, drop: Iterable[str] = (), fresh: bool = False, wait: float = 0.0, lock: bool = True
) -> Iterator[h5py.File]:
    """Change a feature file atomically: under the slide lock (taken here unless ``lock`` is False
    because the caller holds it), yield a temporary copy (without the ``drop`` datasets, or empty
    when ``fresh``), then rename it into place. On any error the temporary file is removed and the
    stored file is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with slide_lock(path, wait=wait) if lock else contextlib.nullcontext(), replacing(path) as tmp:
        with h5py.File(tmp, "w") as out:
            if path.exists() and not fresh:
                try:
                    with h5py.File(path, "r") as old:
                        _copy_except(old, out, set(drop))
                except OSError:  # a corrupt file is rebuilt from scratch
                    out.clear()
                    out.attrs.clear()
            yield out


def write_arrays(
    path: str | Path,
    arrays: Mapping[str, np.ndarray],
    attrs: Mapping[str, Mapping[str, Any]] | None = None,
    wait: float = 60.0,
) -> None:
    """Add or replace datasets (any path, e.g. ``"clusters/k50"``) in an existing feature file,
    atomically and under the slide lock. ``attrs`` maps a dataset path to its attributes."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such feature file; run `fusecpath extract` first")
    if "coords" in arrays:
        raise StoreError("coords are written by extraction only; write other datasets beside them")
    with updating(path, drop=arrays.keys(), wait=wait) as out:
        for name, value in arrays.items():
            dataset = out.create_dataset(name, data=np.asarray(value))
            dataset.attrs.update(dict((attrs or {}).get(name, {})))


# ---------------------------------------------------------------------------------------------- reads


def _plain(value: Any) -> Any:
    """HDF5 attribute values as plain Python (JSON-friendly) values."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _plain_attrs(attrs: h5py.AttributeManager) -> dict[str, Any]:
    return {k: _plain(v) for k, v in attrs.items()}


@dataclass
class SlideFeatures:
    """A read-only view of one feature file; arrays are read on demand."""

    path: Path
    slide_id: str
    coords: np.ndarray
    attrs: dict[str, Any]
    format: str  # "fusecpath", "trident" or "clam"
    _patch: dict[str, str] = field(default_factory=dict, repr=False)  # fm -> dataset path
    _slide: dict[str, str] = field(default_factory=dict, repr=False)
    _files: dict[str, Path] = field(default_factory=dict, repr=False)  # fm -> its file, when not ``path``

    def __len__(self) -> int:
        return len(self.coords)

    def patch_fms(self) -> list[str]:
        return sorted(self._patch)

    def slide_fms(self) -> list[str]:
        return sorted(self._slide)

    def _dataset(self, fm: str, level: str) -> str:
        table = self._patch if level == "patch" else self._slide
        if fm not in table:
            stored = ", ".join(sorted(table)) or "none"
            raise StoreError(
                f"{self.path.name}: no {level} features of {fm!r} (stored: {stored}); "
                f"`fusecpath extract ... --fms {fm}` adds them"
            )
        return table[fm]

    def file_of(self, fm: str) -> Path:
        """The file holding ``fm``'s features (``path`` unless the FMs live in separate files, as in TRIDENT)."""
        return self._files.get(fm, self.path)

    def patch(self, fm: str) -> np.ndarray:
        """(N, D) float32 patch features of ``fm``, rows aligned with ``coords``."""
        data = self._read(self.file_of(fm), self._dataset(fm, "patch"))
        return data.astype(np.float32, copy=False)

    def slide(self, fm: str) -> np.ndarray:
        """(D,) float32 slide embedding of ``fm``."""
        data = self._read(self.file_of(fm), self._dataset(fm, "slide"))
        return data.astype(np.float32, copy=False).reshape(-1)

    def fm_attrs(self, fm: str) -> dict[str, Any]:
        name = self._patch.get(fm) or self._slide.get(fm)
        if name is None:
            return {}
        with h5py.File(self.file_of(fm), "r") as f:
            return _plain_attrs(f[name].attrs)

    def fingerprint(self, fm: str) -> str | None:
        """The spec fingerprint ``fm`` was stored with (None: not stored, or a foreign file)."""
        return self.fm_attrs(fm).get("fingerprint")

    def has(self, name: str) -> bool:
        with h5py.File(self.path, "r") as f:
            return isinstance(f.get(name), h5py.Dataset)

    def array(self, name: str) -> np.ndarray:
        """Any dataset of ``path`` by its name, e.g. ``"clusters/k50"``."""
        return self._read(self.path, name)

    def _read(self, path: Path, name: str) -> np.ndarray:
        with h5py.File(path, "r") as f:
            obj = f.get(name)
            if not isinstance(obj, h5py.Dataset):
                raise StoreError(f"{path.name}: no dataset {name!r}")
            data = obj[()]
        if name == "features" and self.format != "fusecpath" and data.ndim == 3 and data.shape[0] == 1:
            data = data[0]
        return np.asarray(data)

    def datasets(self) -> list[str]:
        """Every dataset path in the file."""
        names: list[str] = []
        with h5py.File(self.path, "r") as f:
            f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        return sorted(names)


def _foreign_fm_name(path: Path, f: h5py.File) -> str:
    """The FM a TRIDENT/CLAM ``features`` dataset holds: from its attributes, from TRIDENT's folder
    name (``features_<encoder>`` / ``slide_features_<encoder>``), else ``"features"``."""
    for attrs in (f["features"].attrs, f.attrs):
        for key in _ENCODER_ATTRS:
            if key in attrs:
                return str(_plain(attrs[key]))
    for prefix in ("slide_features_", "features_"):
        if path.parent.name.startswith(prefix) and len(path.parent.name) > len(prefix):
            return path.parent.name[len(prefix) :]
    return "features"


def open_features(path: str | Path) -> SlideFeatures:
    """Open a fusecpath, TRIDENT or CLAM feature file for reading."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such feature file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise StoreError(f"{path}: not a readable HDF5 file ({exc}); delete it and extract again") from exc
    with f:
        root = _plain_attrs(f.attrs)
        coords_ds = f.get("coords")
        coords_attrs = _plain_attrs(coords_ds.attrs) if isinstance(coords_ds, h5py.Dataset) else {}
        coords = np.zeros((0, 2), np.int64)
        if isinstance(coords_ds, h5py.Dataset):
            coords = np.asarray(coords_ds[()]).reshape(-1, 2).astype(np.int64)
        patch: dict[str, str] = {}
        slide: dict[str, str] = {}
        if root.get("format") == FORMAT or "patch" in f or "slide" in f:
            fmt = "fusecpath"
            for level, table in (("patch", patch), ("slide", slide)):
                group = f.get(level)
                if isinstance(group, h5py.Group):
                    table.update(
                        {fm: f"{level}/{fm}" for fm, ds in group.items() if isinstance(ds, h5py.Dataset)}
                    )
        elif isinstance(f.get("features"), h5py.Dataset):
            fmt = (
                "trident"
                if "patch_size_level0" in coords_attrs or "target_magnification" in coords_attrs
                else "clam"
            )
            features = f["features"]
            name = _foreign_fm_name(path, f)
            if features.ndim == 1 or (features.ndim == 2 and features.shape[0] == 1 and len(coords) != 1):
                slide[name] = "features"
            else:
                patch[name] = "features"
        else:
            raise StoreError(f"{path}: not a feature file (no patch/ or features dataset)")
        if patch and not len(coords) and "coords" not in f:
            raise StoreError(f"{path}: patch features without coords; the file is incomplete")
    attrs = {**root, **coords_attrs}
    slide_id = str(root.get("slide_id") or coords_attrs.get("name") or path.stem)
    return SlideFeatures(path, slide_id, coords, attrs, fmt, patch, slide)


def list_store(directory: str | Path) -> list[dict[str, Any]]:
    """One row per feature file in ``directory`` (what ``fusecpath features ls DIR --json`` prints)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise StoreError(f"{directory}: no such directory")
    from fusecpath.features.trident import is_trident_job, list_trident

    if is_trident_job(directory):
        return list_trident(directory)
    rows = []
    for path in sorted(p for p in directory.glob("*.h5") if not p.name.startswith(".")):
        row: dict[str, Any] = {
            "slide_id": path.stem,
            "path": str(path),
            "bytes": path.stat().st_size,
            "locked": lock_path(path).exists(),
        }
        try:
            sf = open_features(path)
        except StoreError as exc:
            rows.append({**row, "error": str(exc)})
            continue
        fm_paths = {*sf._patch.values(), *sf._slide.values(), "coords"}
        with h5py.File(path, "r") as f:
            patch = {
                fm: {"dim": int(f[name].shape[-1]), "fingerprint": _plain(f[name].attrs.get("fingerprint"))}
                for fm, name in sorted(sf._patch.items())
            }
            slide = {
                fm: {"dim": int(f[name].shape[-1]), "fingerprint": _plain(f[name].attrs.get("fingerprint"))}
                for fm, name in sorted(sf._slide.items())
            }
        row.update(
            slide_id=sf.slide_id,
            format=sf.format,
            n_patches=len(sf.coords),
            mpp=sf.attrs.get("mpp"),
            read_px=sf.attrs.get("read_px"),
            patch_size_level0=sf.attrs.get("patch_size_level0"),
            patch_fms=patch,
            slide_fms=slide,
            other=[d for d in sf.datasets() if d not in fm_paths],
            error=None,
        )
        rows.append(row)
    return rows
