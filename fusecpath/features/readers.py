"""Persistent reader processes for a whole extraction run.

A task is a batch of patches of one slide at one or more read geometries; the reader writes one uint8
(n, px, px, 3) array a geometry into a slot of shared memory that the consumer lent it, so the consumer
reads the pixels where they were decoded, and the slot is lent again once the consumer is done with
it: no array is pickled, and no fresh shared memory is mapped (and page-faulted in) batch after batch.
Each reader keeps its slide open between tasks and is given a contiguous band of the slide's
row-major grid, so the tiles that several neighbouring patches (or several geometries) cover are
decoded once, from the tile cache. Slides are submitted ahead (``submit``): a reader that finishes its
band of one slide goes on with the next slide's while the consumer is still on the first. With
``workers=0`` the batches are read in the calling process.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fusecpath.errors import FusecpathError
from fusecpath.slides.reader import Slide, open_slide

SLOTS = 3  # shared-memory batch slots a reader: up to SLOTS tasks in flight or waiting for the consumer
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


def batch_bytes(n: int, geometries: Sequence[Geometry]) -> int:
    return n * sum(g.px * g.px * 3 for g in geometries)


def batch_views(buffer: torch.Tensor, n: int, geometries: Sequence[Geometry]) -> list[torch.Tensor]:
    """The uint8 (n, px, px, 3) tensors of a batch, one a geometry, laid out one after another in
    ``buffer`` (a flat uint8 tensor of at least ``batch_bytes(n, geometries)``)."""
    views, offset = [], 0
    for g in geometries:
        size = n * g.px * g.px * 3
        views.append(buffer[offset : offset + size].view(n, g.px, g.px, 3))
        offset += size
    return views


def _shared(nbytes: int) -> torch.Tensor:
    """A flat uint8 tensor in fresh shared memory (``share_memory_()`` would copy a private one there)."""
    return torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage._new_shared(nbytes))


def read_into(slide: Slide, coords: np.ndarray, geometries: Sequence[Geometry], outs) -> None:
    """Read every patch of ``coords`` at every geometry into ``outs`` (one tensor a geometry)."""
    arrays = [out.numpy() for out in outs]
    for i, (x, y) in enumerate(coords):
        for array, g in zip(arrays, geometries, strict=True):
            array[i] = slide.read_patch(x + g.offset, y + g.offset, g.size, g.px)


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
    """A reader process: read tasks into their slots until None arrives, or the run's process is gone."""
    torch.set_num_threads(1)
    parent = os.getppid()
    slides = _OpenSlides()
    slots: dict[int, torch.Tensor] = {}
    while True:
        try:
            task = tasks.get(timeout=2.0)
        except queue.Empty:
            if os.getppid() != parent:  # the run was killed: do not linger
                break
            continue
        if task is None:
            break
        ticket, start, slot, buffer, path, mpp, coords, geometries = task
        if buffer is not None:  # a new or grown slot: kept for the tasks that name it later
            slots[slot] = buffer
        try:
            slide = slides.get(path, mpp, geometries)
            read_into(slide, coords, geometries, batch_views(slots[slot], len(coords), geometries))
            results.put((ticket, start, None))
        except Exception as exc:  # noqa: BLE001 - every error goes to the consumer, which raises it
            results.put((ticket, start, " ".join(str(exc).split()) or type(exc).__name__))
    slides.close()


@dataclass
class _Job:
    """One submitted slide: its batches not yet handed to the consumer, and how to read them."""

    path: str
    mpp: float
    coords: np.ndarray
    geometries: tuple[Geometry, ...]
    batch_size: int
    left: int


class ReaderPool:
    """``workers`` reader processes started once for a run. ``submit(...)`` queues one slide's batches
    and returns a ticket; ``results(ticket)`` yields them; ``read(...)`` does both.

    Only one thread takes results; any thread may submit (the next slide's reads are submitted while
    the current slide's are consumed)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._procs: list = []
        self._local = _OpenSlides()
        self._lock = threading.Lock()
        self._jobs: dict[int, _Job] = {}
        self._tickets = itertools.count()
        self._pending: list[dict[int, deque]] = [{} for _ in range(workers)]  # ticket -> starts not sent
        self._wanted: int | None = None  # the ticket being consumed
        self._buffers: list[list[torch.Tensor | None]] = [[None] * SLOTS for _ in range(workers)]
        self._free: list[list[int]] = [list(range(SLOTS)) for _ in range(workers)]
        self._sent: dict[tuple[int, int], tuple[int, int]] = {}  # (ticket, start) -> (reader, slot)
        self._arrived: dict[int, deque] = {}  # ticket -> (start, reader, slot, error) not yet taken
        self._local_buffer = torch.empty(0, dtype=torch.uint8)
        if workers:
            context = torch.multiprocessing.get_context("fork")
            self._results = context.Queue()
            self._tasks = [context.Queue() for _ in range(workers)]
            for tasks in self._tasks:
                proc = context.Process(target=_serve, args=(tasks, self._results), daemon=True)
                proc.start()
                self._procs.append(proc)

    def submit(
        self,
        path: Path | str,
        mpp: float,
        coords: np.ndarray,
        geometries: Sequence[Geometry],
        batch_size: int,
    ) -> int:
        """Queue every batch of ``coords``; reader r gets the r-th contiguous band of batches, so
        neighbouring patches share its tile cache."""
        starts = list(range(0, len(coords), batch_size))
        job = _Job(str(path), mpp, coords, tuple(geometries), batch_size, len(starts))
        with self._lock:
            ticket = next(self._tickets)
            self._jobs[ticket] = job
            self._arrived[ticket] = deque()
            if self.workers:
                for reader, band in enumerate(np.array_split(np.array(starts, dtype=np.int64), self.workers)):
                    if len(band):
                        self._pending[reader][ticket] = deque(int(start) for start in band)
                self._pump()
        return ticket

    def results(self, ticket: int) -> Iterator[tuple[int, list[torch.Tensor]]]:
        """(start, tensors) for every batch of the ticket's slide, in the order the readers finish
        them. The tensors are valid until the next batch is taken (copy what must outlive that).
        Leaving early (an error, ``close()`` of the generator) cancels the rest of the ticket."""
        job = self._jobs[ticket]
        held = None
        try:
            if not self.workers:
                yield from self._read_here(job)
                return
            with self._lock:
                self._wanted = ticket
                self._pump()
            while job.left:
                self._release(held)
                held = None
                start, reader, slot, error = self._take(ticket)
                job.left -= 1
                if error is not None:
                    self._release((reader, slot))
                    raise ReadError(error)
                held = (reader, slot)
                n = len(job.coords[start : start + job.batch_size])
                yield start, batch_views(self._buffers[reader][slot], n, job.geometries)
        finally:
            self._release(held)
            self.cancel(ticket)

    def read(
        self,
        path: Path | str,
        mpp: float,
        coords: np.ndarray,
        geometries: Sequence[Geometry],
        batch_size: int,
    ) -> Iterator[tuple[int, list[torch.Tensor]]]:
        """``results(submit(...))``."""
        return self.results(self.submit(path, mpp, coords, geometries, batch_size))

    def cancel(self, ticket: int) -> None:
        """Forget a ticket: its batches not yet sent are dropped, those in flight are discarded as they
        arrive. Nothing happens for a ticket already done or cancelled."""
        with self._lock:
            if self._jobs.pop(ticket, None) is None:
                return
            for pending in self._pending:
                pending.pop(ticket, None)
            for _, reader, slot, _ in self._arrived.pop(ticket, ()):
                self._free[reader].append(slot)
            self._pump()

    def _read_here(self, job: _Job) -> Iterator[tuple[int, list[torch.Tensor]]]:
        slide = self._local.get(job.path, job.mpp, job.geometries)
        for start in range(0, len(job.coords), job.batch_size):
            coords = job.coords[start : start + job.batch_size]
            need = batch_bytes(len(coords), job.geometries)
            if len(self._local_buffer) < need:
                self._local_buffer = torch.empty(need, dtype=torch.uint8)
            outs = batch_views(self._local_buffer, len(coords), job.geometries)
            read_into(slide, coords, job.geometries, outs)
            job.left -= 1
            yield start, outs
        self._local.close()

    def _pump(self) -> None:
        """Send pending batches to every reader that has a free slot (under the lock): the ticket being
        consumed first, then the others in the order submitted, which may hold all slots but one (so
        the consumer never waits on a slot that a later slide's batches fill)."""
        for reader, pending in enumerate(self._pending):
            while self._free[reader] and pending:
                ticket = self._wanted if self._wanted in pending else next(iter(pending))
                if ticket != self._wanted and self._engaged(reader) >= SLOTS - 1:
                    break
                starts = pending[ticket]
                start = starts.popleft()
                if not starts:
                    del pending[ticket]
                self._send(reader, ticket, start)

    def _engaged(self, reader: int) -> int:
        """Slots of ``reader`` held by tickets other than the one being consumed."""
        sent = sum(1 for (t, _), (r, _) in self._sent.items() if r == reader and t != self._wanted)
        waiting = sum(
            1
            for t, items in self._arrived.items()
            if t != self._wanted
            for item in items
            if item[1] == reader
        )
        return sent + waiting

    def _send(self, reader: int, ticket: int, start: int) -> None:
        job = self._jobs[ticket]
        coords = job.coords[start : start + job.batch_size]
        slot = self._free[reader].pop()
        need, buffer = batch_bytes(len(coords), job.geometries), None
        held = self._buffers[reader][slot]
        if held is None or len(held) < need:  # sized for a full batch of this slide
            full = batch_bytes(job.batch_size, job.geometries)
            buffer = self._buffers[reader][slot] = _shared(full)
        self._tasks[reader].put((ticket, start, slot, buffer, job.path, job.mpp, coords, job.geometries))
        self._sent[(ticket, start)] = (reader, slot)

    def _take(self, ticket: int) -> tuple[int, int, int, str | None]:
        """The next arrived batch of ``ticket``, keeping those of other tickets for later."""
        while True:
            with self._lock:
                if self._arrived[ticket]:
                    return self._arrived[ticket].popleft()
            got, start, error = self._get()
            with self._lock:
                reader, slot = self._sent.pop((got, start))
                if got in self._jobs:
                    self._arrived[got].append((start, reader, slot, error))
                else:  # cancelled
                    self._free[reader].append(slot)
                    self._pump()

    def _release(self, held: tuple[int, int] | None) -> None:
        if held is not None:
            with self._lock:
                self._free[held[0]].append(held[1])
                self._pump()

    def _get(self):
        while True:
            try:
                return self._results.get(timeout=5.0)
            except queue.Empty:
                dead = [p.pid for p in self._procs if not p.is_alive()]
                if dead:
                    raise ReadError(f"reader process(es) {dead} died; re-run to resume") from None

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
