"""Training under ``torchrun``: cross-validation jobs sharded across ranks, the final fit under DDP.

``torchrun --nproc-per-node K -m fusecpath fuse ...`` sets RANK/WORLD_SIZE; ``setup`` then starts the
process group (NCCL on GPUs, gloo on CPU). Each (fold, method) job trains on one rank with its own
seed, exactly as in a single process, and the results are gathered in job order, so the metrics equal
the single-process run's. The final fit trains one model on every rank under DistributedDataParallel,
each rank taking its share of every batch of bags. Only rank 0 writes files and prints.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: rank ``rank`` of ``world`` (1 outside torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, jobs: Sequence[T]) -> list[T]:
        """This rank's jobs: every ``world``-th job, starting at ``rank``."""
        return list(jobs[self.rank :: self.world])

    def gather(self, items: list[T]) -> list[T]:
        """Every rank's items, on every rank (ranks' lists concatenated in rank order)."""
        if not self.enabled:
            return items
        everyone: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(everyone, items)
        return [item for part in everyone for item in part]

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (e.g. writes caches), then the others (which read them)."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def batch_share(self, inputs: Any, positions: Any) -> tuple[Any, Any]:
        """This rank's contiguous share of a batch: tensors (and lists/tuples of them) cut on dim 0."""
        n = len(positions)
        if not self.enabled or n < self.world:  # too small to split: every rank takes it whole
            return inputs, positions
        start, stop = n * self.rank // self.world, n * (self.rank + 1) // self.world
        return _take(inputs, slice(start, stop)), positions[start:stop]

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model under DistributedDataParallel (gradients averaged across ranks), or as it is."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        on_gpu = next(model.parameters()).device.type == "cuda"
        return DistributedDataParallel(model, device_ids=[self.local_rank] if on_gpu else None)


def _take(inputs: Any, rows: slice) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs[rows]
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(_take(x, rows) for x in inputs)
    raise TypeError(f"cannot split a batch of {type(inputs).__name__} across ranks")


_current = Dist()


def current() -> Dist:
    return _current


def setup(device: str = "cpu") -> Dist:
    """Join the torchrun process group when WORLD_SIZE > 1 (once per process); else a single rank."""
    global _current
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or _current.enabled:
        return _current
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    on_gpu = device.startswith("cuda")
    if on_gpu:
        torch.cuda.set_device(local_rank)
    else:  # share the cores instead of every rank using all of them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    torch.distributed.init_process_group("nccl" if on_gpu else "gloo")
    _current = Dist(rank=rank, world=world, local_rank=local_rank)
    return _current
