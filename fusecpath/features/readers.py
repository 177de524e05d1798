"""Persistent reader processes for a whole extraction run.

A task is a batch of patches of one slide at one or more read geometries; its result is one uint8
(n, px, px, 3) tensor a geometry, written by the reader straight into shared memory, so the consumer
receives it without a copy. Each reader keeps its slide open between tasks and is given a contiguous
band of the slide's row-major grid, so the tiles that several neighbouring patches (or several
geometries) cover are decoded once, from OpenSlide's tile cache. With ``workers=0`` the batches are read
in the calling process.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fusecpath.errors import FusecpathError
from fusecpath.slides.reader import Slide, open_slide

PREFETCH = 3  # tasks queued ahead per reader
TILE_CACHE_MIN, TILE_CACHE_MAX = 32 << 20, 256 << 20  # bytes of decoded tiles each reader keeps


@dataclass(frozen=True)
class Geometry:
    """Where a patch is read: ``offset`` added to the grid coords, a ``size`` square at level 0,
    resized to ``px``."""

    offset: float
    size: float
    px: int


class ReadError(FusecpathError):
    """A patch a reader could not read (the reader's one-line message)."""


def read_batch(
    slide: Slide, coords: np.ndarray, geometries: Sequence[Geometry], shared: bool = False
) -> list[torch.Tensor]:
    """One uint8 (len(coords), px, px, 3) tensor a geometry; in shared memory when ``shared``."""
    outs = [_empty((len(coords), g.px, g.px, 3), shared) for g in geometries]
    arrays = [out.numpy() for out in outs]
    for i, (x, y) in enumerate(coords):
        for array, g in zip(arrays, geometries, strict=True):
            array[i] = slide.read_patch(x + g.offset, y + g.offset, g.size, g.px)
    return outs


def _empty(shape: tuple[int, ...], shared: bool) -> torch.Tensor:
    if not shared:
        return torch.empty(shape, dtype=torch.uint8)
    storage = torch.UntypedStorage._new_shared(int(np.prod(shape)))
    return torch.empty(0, dtype=torch.uint8).set_(storage).view(shape)


def tile_cache_bytes(slide: Slide, geometries: Sequence[Geometry]) -> int:
    """Enough decoded tiles for two grid rows of the widest read level: a row of tiles that two rows
    of patches share is still cached when the second row reaches it."""
    need = 0
    for g in geometries:
        level = slide.best_level(g.size / g.px)
        width = slide.level_dimensions[level][0]
        need = max(need, int(width * 2 * (g.size / slide.level_downsamples[level] + 512) * 4))
    return min(TILE_CACHE_MAX, max(TILE_CACHE_MIN, need))


class _OpenSlides:
    """The slide a reader is on, kept open across its tasks (one at a time)."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.slide: Slide | None = None

    def get(self, path: str, mpp: float, geometries: Sequence[Geometry]) -> Slide:
        if self.path != path:
            self.close()
            self.slide, self.path = open_slide(path, mpp=mpp), path
            self.slide.set_tile_cache(tile_cache_bytes(self.slide, geometries))
        return self.slide

    def close(self) -> None:
        if self.slide is not None:
            self.slide.close()
        self.slide = self.path = None


def _serve(tasks, results) -> None:
    """A reader process: read tasks until None arrives, or until the run's process is gone."""
    torch.set_num_threads(1)
    parent = os.getppid()
    slides = _OpenSlides()
    while True:
        try:
            task = tasks.get(timeout=2.0)
        except queue.Empty:
            if os.getppid() != parent:  # the run was killed: do not linger
                break
            continue
        if task is None:
            break
        key, path, mpp, coords, geometries = task
        try:
            slide = slides.get(path, mpp, geometries)
            results.put((key, read_batch(slide, coords, geometries, shared=True), None))
        except Exception as exc:  # noqa: BLE001 - every error goes to the consumer, which raises it
            results.put((key, None, " ".join(str(exc).split()) or type(exc).__name__))
    slides.close()


class ReaderPool:
    """``workers`` reader processes started once for a run; ``read(...)`` yields one slide's batches."""

    def __init__(self, workers: int):
        self.workers = workers
        self._procs: list = []
        self._local = _OpenSlides()
        if workers:
            context = torch.multiprocessing.get_context("fork")
            self._results = context.Queue()
            self._tasks = [context.Queue() for _ in range(workers)]
            for tasks in self._tasks:
                proc = context.Process(target=_serve, args=(tasks, self._results), daemon=True)
                proc.start()
                self._procs.append(proc)

    def read(
        self,
        path: Path,
        mpp: float,
        coords: np.ndarray,
        geometries: Sequence[Geometry],
        batch_size: int,
    ) -> Iterator[tuple[int, list[torch.Tensor]]]:
        """(start, tensors) for every batch of ``coords``, in the order the readers finish them."""
        starts = list(range(0, len(coords), batch_size))
        geometries = tuple(geometries)
        if not self.workers:
            slide = self._local.get(str(path), mpp, geometries)
            for start in starts:
                yield start, read_batch(slide, coords[start : start + batch_size], geometries)
            self._local.close()
            return
        # reader r gets the r-th contiguous band of batches: neighbouring patches share its tile cache
        bands = [list(b) for b in np.array_split(np.array(starts, dtype=np.int64), self.workers)]
        sent: dict[int, int] = {}  # start -> reader

        def submit(reader: int) -> None:
            if bands[reader]:
                start = int(bands[reader].pop(0))
                chunk = coords[start : start + batch_size]
                self._tasks[reader].put((start, str(path), mpp, chunk, geometries))
                sent[start] = reader

        for reader in range(self.workers):
            for _ in range(PREFETCH):
                submit(reader)
        try:
            while sent:
                start, tensors, error = self._get()
                reader = sent.pop(start)
                if error is not None:
                    raise ReadError(error)
                submit(reader)
                yield start, tensors
        finally:
            self._drain(sent)

    def _get(self):
        while True:
            try:
                return self._results.get(timeout=5.0)
            except queue.Empty:
                dead = [p.pid for p in self._procs if not p.is_alive()]
                if dead:
                    raise ReadError(f"reader process(es) {dead} died; re-run to resume") from None

    def _drain(self, sent: dict[int, int]) -> None:
        """Collect what is still in flight (after an error), so the next slide starts clean."""
        for tasks in self._tasks:
            while True:  # drop tasks not yet started
                try:
                    start = tasks.get_nowait()[0]
                except queue.Empty:
                    break
                if start is not None:
                    sent.pop(start, None)
        while sent:
            sent.pop(self._get()[0], None)

    def close(self) -> None:
        for tasks in getattr(self, "_tasks", []):
            tasks.put(None)
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        self._procs = []
        self._local.close()

    def __enter__(self) -> ReaderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
