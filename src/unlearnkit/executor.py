"""Run independent jobs: inline, or in local worker processes.

The pipeline describes each model's training or unlearning run as a job, a picklable
``(function, argument)`` pair whose function writes its own result to the cache. An
executor only has to call them; this is the seam where a distributed engine (Ray,
Dask, a batch queue) can take the jobs across machines without the pipeline changing:
give it the same ``map`` method.

A job pins its own thread count (:data:`unlearnkit.jobs.JOB_THREADS`), so its result
does not depend on how many jobs run at once. On Ctrl-C (or when the caller stops
reading results) the pending jobs are cancelled and the workers terminated at once
(:data:`STOP_SECONDS` at most): a worker removes the temporary file it was writing and
exits, so the cache holds only complete entries.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

from tqdm.auto import tqdm

STOP_SECONDS = 1.0  # a terminated worker gets this long to clean up, then is killed
_in_job = False  # in a worker: whether a job is running (SIGTERM then unwinds it)


@dataclass
class JobResult:
    """The outcome of one job: its value, or the error it raised."""

    job: object
    value: object = None
    error: str | None = None


class Terminated(KeyboardInterrupt):
    """Raised in a worker's job by SIGTERM: unwinds it (temporary files removed)."""


def _on_sigterm(signum, frame):
    if _in_job:
        raise Terminated()
    os._exit(128 + signum)  # idle: nothing to clean up


def _init_worker() -> None:
    """Workers leave Ctrl-C to the main process, and stop cleanly on SIGTERM."""
    import torch

    from .jobs import JOB_THREADS

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    torch.set_num_threads(JOB_THREADS)
    os.environ["OMP_NUM_THREADS"] = str(JOB_THREADS)


def _call(fn: Callable, job) -> JobResult:
    global _in_job
    _in_job = True
    try:
        return JobResult(job, fn(job))
    except Terminated:
        os._exit(128 + signal.SIGTERM)  # the job has unwound: its temporary files are gone
    except KeyboardInterrupt:
        raise
    except Exception as err:  # recorded, the other jobs go on
        return JobResult(job, error=f"{type(err).__name__}: {err}")
    finally:
        _in_job = False


class LocalExecutor:
    """``workers`` processes on this machine (1 = inline, in this process)."""

    def __init__(self, workers: int = 1):
        if workers < 1:
            raise ValueError(f"--workers must be >= 1, got {workers}; give 1 to run inline")
        self.workers = workers

    def map(self, fn: Callable, jobs: Iterable, desc: str = "jobs",
            progress: bool = True) -> Iterator[JobResult]:
        """Call ``fn(job)`` for every job, yielding results as they finish."""
        jobs = list(jobs)
        bar = tqdm(total=len(jobs), desc=desc, disable=not progress or not jobs)
        try:
            if self.workers == 1 or len(jobs) <= 1:
                for job in jobs:
                    yield _call(fn, job)
                    bar.update()
                return
            yield from self._map_processes(fn, jobs, bar)
        finally:
            bar.close()

    def _map_processes(self, fn, jobs, bar) -> Iterator[JobResult]:
        ctx = mp.get_context("spawn")
        pool = ProcessPoolExecutor(min(self.workers, len(jobs)), mp_context=ctx,
                                   initializer=_init_worker)
        finished = False
        try:
            with _children_ignore_sigint():
                pending = {pool.submit(_call, fn, job) for job in jobs}  # spawns the workers
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    bar.update()
                    yield fut.result()
            finished = True
        finally:
            if finished:
                pool.shutdown(wait=True)
            else:  # Ctrl-C, an error, or the caller stopped reading: stop now
                stop_pool(pool)


@contextlib.contextmanager
def _children_ignore_sigint():
    """Launch the workers with SIGINT ignored: they inherit that from their first
    instruction (an ignored signal survives exec), so a Ctrl-C while they import prints no
    tracebacks; the main process alone handles Ctrl-C (it is ignored during the launch)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def stop_pool(pool: ProcessPoolExecutor, grace: float = STOP_SECONDS) -> None:
    """Cancel ``pool``'s pending jobs and terminate its workers (killed after ``grace``)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(0.5)
