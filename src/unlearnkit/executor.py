"""Run independent jobs: inline, or in local worker processes.

The pipeline describes each model's training or unlearning run as a job, a picklable
``(function, argument)`` pair whose function writes its own result to the cache. An
executor only has to call them; this is the seam where a distributed engine (Ray,
Dask, a batch queue) can take the jobs across machines without the pipeline changing:
give it the same ``map`` method.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

from tqdm.auto import tqdm


@dataclass
class JobResult:
    """The outcome of one job: its value, or the error it raised."""

    job: object
    value: object = None
    error: str | None = None


def _init_worker(threads: int) -> None:
    """Give each worker its share of the cores, so workers never oversubscribe them."""
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def _call(fn: Callable, job) -> JobResult:
    try:
        return JobResult(job, fn(job))
    except KeyboardInterrupt:
        raise
    except Exception as err:  # recorded, the other jobs go on
        return JobResult(job, error=f"{type(err).__name__}: {err}")


class LocalExecutor:
    """``workers`` processes on this machine (1 = inline, in this process)."""

    def __init__(self, workers: int = 1, threads_per_worker: int | None = None):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        cores = os.cpu_count() or 1
        self.threads = threads_per_worker or max(1, cores // workers)

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
        pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(self.threads,))
        try:
            pending = {pool.submit(_call, fn, job) for job in jobs}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    bar.update()
                    yield fut.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
