"""Extraction on a Ray cluster: slides are tasks, actors hold the chosen FMs loaded once each.

Every actor writes into the same feature store through ``extract_slide``, so atomic writes, the
fingerprint skip and the slide locks apply unchanged: a re-run (or a lost node) resumes without redoing
finished slides. A slide whose actor dies is recorded as failed for this run, never retried in a loop.
Ray is optional: ``pip install "fusecpath[ray]"``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fusecpath.errors import FusecpathError
from fusecpath.zoo import EncoderSpec


def import_ray():
    try:
        import ray
    except ImportError:
        raise FusecpathError(
            '--backend ray needs Ray: `pip install "fusecpath[ray]"` (or `pip install ray`)'
        ) from None
    return ray


class SlideWorker:
    """A Ray actor: one Extractor (its models stay loaded) that extracts whole slides."""

    def __init__(self, device: str, batch_size: int, loader_workers: int):
        from fusecpath.features.extract import Extractor

        self.engine = Extractor(device, batch_size, loader_workers, None)

    def pid(self) -> int:
        return os.getpid()

    def extract(
        self,
        path: str,
        patch_specs: list[EncoderSpec],
        slide_specs: list[EncoderSpec],
        out_dir: str,
        mpp: float | None,
    ) -> tuple[str, Any]:
        """("written" | "skipped", summary), ("busy", None) or ("failed", one-line message)."""
        from fusecpath.features.extract import _one_line as one_line
        from fusecpath.features.extract import extract_slide
        from fusecpath.features.store import SlideLockedError

        try:
            return extract_slide(self.engine, Path(path), patch_specs, slide_specs, Path(out_dir), mpp)
        except SlideLockedError:
            return "busy", None
        except (FusecpathError, OSError, RuntimeError, ValueError) as exc:
            return "failed", one_line(exc)


def run_on_ray(
    paths: Sequence[Path],
    patch_specs: list[EncoderSpec],
    slide_specs: list[EncoderSpec],
    out_dir: Path,
    mpp: float | None,
    *,
    address: str | None,
    actors: int,
    device: str,
    batch_size: int,
    loader_workers: int,
    report: Callable[[Path, str, Any], None],
) -> None:
    """Extract ``paths`` with ``actors`` Ray actors; ``report(path, status, detail)`` once per slide,
    on the driver, as results arrive (status: written, skipped, busy or failed)."""
    ray = import_ray()
    if actors < 1:
        raise FusecpathError("--ray-workers must be at least 1")
    started_here = not ray.is_initialized()
    # Ray prints worker deaths on stdout; keep stdout for the results (--json).
    with contextlib.redirect_stdout(sys.stderr):
        if started_here:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                **({} if address else {"num_cpus": max(actors, os.cpu_count() or 1)}),
            )
        try:
            _schedule(
                ray,
                paths,
                patch_specs,
                slide_specs,
                out_dir,
                mpp,
                actors,
                device,
                batch_size,
                loader_workers,
                report,
            )
        finally:
            if started_here:
                ray.shutdown()


def _schedule(
    ray,
    paths: Sequence[Path],
    patch_specs: list[EncoderSpec],
    slide_specs: list[EncoderSpec],
    out_dir: Path,
    mpp: float | None,
    actors: int,
    device: str,
    batch_size: int,
    loader_workers: int,
    report: Callable[[Path, str, Any], None],
) -> None:
    """Keep every actor busy with one slide at a time; replace an actor that dies."""
    gpus = 1 if device.startswith("cuda") else 0
    actor_class = ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=0)(SlideWorker)
    idle = [actor_class.remote(device, batch_size, loader_workers) for _ in range(actors)]
    pending: dict[Any, tuple[Path, Any]] = {}
    queue = list(paths)

    def submit(actor) -> None:
        path = queue.pop(0)
        ref = actor.extract.remote(str(path), patch_specs, slide_specs, str(out_dir), mpp)
        pending[ref] = (path, actor)

    while queue and idle:
        submit(idle.pop())
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        path, actor = pending.pop(ref)
        try:
            status, detail = ray.get(ref)
        except ray.exceptions.RayActorError:
            report(path, "failed", f"{path.name}: the Ray worker extracting it died; re-run to resume")
            actor = actor_class.remote(device, batch_size, loader_workers)  # replace the lost actor
        except ray.exceptions.RayError as exc:
            report(path, "failed", f"{path.name}: Ray task failed ({type(exc).__name__})")
        else:
            report(path, status, detail)
        if queue:
            submit(actor)
