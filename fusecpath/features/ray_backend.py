"""Extraction on a Ray cluster: slides are tasks, actors hold the chosen FMs loaded once each.

Every actor runs the same ``ExtractionJob`` as the local backend, so atomic writes, the
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
from fusecpath.features.extract import ExtractionJob


def import_ray():
    try:
        import ray
    except ImportError:
        raise FusecpathError(
            '--backend ray needs Ray: `pip install "fusecpath[ray]"` (or `pip install ray`)'
        ) from None
    return ray


class SlideWorker:
    """A Ray actor: the job's engine (its models stay loaded) extracting whole slides."""

    def __init__(self, job: ExtractionJob):
        self.job = job
        self.engine = job.engine()

    def pid(self) -> int:
        return os.getpid()

    def extract(self, path: str) -> tuple[str, Any]:
        """("written" | "skipped", summary), ("busy", None) or ("failed", one-line message)."""
        return self.job.extract_one(self.engine, Path(path))


def run_on_ray(
    job: ExtractionJob,
    paths: Sequence[Path],
    *,
    address: str | None,
    actors: int,
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
            _schedule(ray, job, paths, actors, report)
        finally:
            if started_here:
                ray.shutdown()


def _schedule(
    ray, job: ExtractionJob, paths: Sequence[Path], actors: int, report: Callable[[Path, str, Any], None]
) -> None:
    """Keep every actor busy with one slide at a time; replace an actor that dies."""
    gpus = 1 if job.device.startswith("cuda") else 0
    actor_class = ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=0)(SlideWorker)
    job_ref = ray.put(job)
    idle = [actor_class.remote(job_ref) for _ in range(actors)]
    pending: dict[Any, tuple[Path, Any]] = {}
    queue = list(paths)

    def submit(actor) -> None:
        path = queue.pop(0)
        pending[actor.extract.remote(str(path))] = (path, actor)

    while queue and idle:
        submit(idle.pop())
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        path, actor = pending.pop(ref)
        try:
            status, detail = ray.get(ref)
        except ray.exceptions.RayActorError:
            report(path, "failed", f"{path.name}: the Ray worker extracting it died; re-run to resume")
            actor = actor_class.remote(job_ref)  # replace the lost actor
        except ray.exceptions.RayError as exc:
            report(path, "failed", f"{path.name}: Ray task failed ({type(exc).__name__})")
        else:
            report(path, status, detail)
        if queue:
            submit(actor)
