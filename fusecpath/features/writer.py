"""HDF5 feature writes off the critical path.

The model hands each batch's features to a background thread and goes on with the next batch. On CUDA
the device-to-host copy goes into pinned memory without blocking and the thread waits for it, so the
copy of batch k overlaps the model on batch k+1.
"""

from __future__ import annotations

import queue
import threading

import h5py
import torch

DEPTH = 8  # batches in flight before the model waits for the file


class FeatureWriter:
    """``put(dataset, start, features)`` returns at once; ``flush()`` waits for every write and
    re-raises the first error."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fusecpath-feature-writer", daemon=True)
        self._thread.start()

    def put(self, dataset: h5py.Dataset, start: int, features: torch.Tensor) -> None:
        self._raise()
        event = None
        if features.device.type == "cuda":
            host = torch.empty(features.shape, dtype=features.dtype, pin_memory=True)
            host.copy_(features, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            features = host
        else:
            features = features.clone()  # the model may return a view of an input buffer reused next batch
        self._queue.put((dataset, start, features, event))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            dataset, start, features, event = item
            try:
                if self._error is None:
                    if event is not None:
                        event.synchronize()
                    dataset[start : start + len(features)] = features.numpy()
            except Exception as exc:  # noqa: BLE001 - re-raised in the caller by flush() or put()
                self._error = exc
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def flush(self) -> None:
        self._queue.join()
        self._raise()

    def discard(self) -> None:
        """Wait for the writes in flight and forget their errors (the file is being thrown away)."""
        self._queue.join()
        self._error = None

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
