"""Run independent jobs: inline, or in local worker processes.

The pipeline describes each model's training or unlearning run as a job, a picklable
``(function, argument)`` pair whose function writes its own result to the cache. An
executor only has to call them; this is the seam where a distributed engine (Ray,
Dask, a batch queue) can take the jobs across machines without the pipeline changing:
give it the same ``map`` method.

A job pins its own thread count (:data:`unlearnkit.harness.jobs.JOB_THREADS`), so its result
does not depend on how many jobs run at once. On Ctrl-C (or when the caller stops
reading results) the pending jobs are cancelled and the workers terminated at once
(:data:`STOP_SECONDS` at most): a worker removes the temporary file it was writing and
exits, so the cache holds only complete entries.

A command's stages (the original oracle, the references, the retrain oracle, each
method's runs) can share one :class:`WorkerPool`: its processes are started once (each
imports torch and prepares its benchmark once) and run the jobs of every stage, rather
than a fresh set of workers per stage.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
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
    if hasattr(signal, "pthread_sigmask"):  # launched with SIGINT blocked: now ignored
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGTERM, _on_sigterm)
    # tqdm's default lock is a multiprocessing one: a named semaphore that a terminated
    # worker would leak (and the resource tracker warn about); a worker needs a thread lock
    tqdm.set_lock(threading.RLock())
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


class WorkerPool:
    """Worker processes kept for a whole command, started when first needed.

    Close it (or use it as a context manager) when the command ends; a map that did not
    finish (Ctrl-C, an error) terminates its workers, and the next map starts fresh ones.
    """

    def __init__(self):
        self.workers: list[_Worker] = []
        self.closed = False
        self._ctx = mp.get_context("spawn")

    def take(self, n: int) -> list[_Worker]:
        """``n`` idle workers (started here when the pool has fewer)."""
        if self.closed:
            raise RuntimeError("this worker pool is closed: its command has ended")
        for w in [w for w in self.workers if not w.proc.is_alive()]:  # died while idle
            w.close()
            self.workers.remove(w)
        with _children_ignore_sigint():
            while len(self.workers) < n:
                self.workers.append(_Worker(self._ctx))
        return self.workers[:n]

    def replace(self, dead: _Worker) -> _Worker:
        """A fresh worker in place of ``dead`` (which died running a job)."""
        dead.close()
        with _children_ignore_sigint():
            fresh = _Worker(self._ctx)
        self.workers[self.workers.index(dead)] = fresh
        return fresh

    def stop(self, graceful: bool = True) -> None:
        """End every worker (asked to when ``graceful``, else terminated at once)."""
        workers, self.workers = self.workers, []
        stop_workers(workers, graceful=graceful)

    def close(self, graceful: bool = True) -> None:
        """End every worker, and refuse to start more."""
        self.stop(graceful)
        self.closed = True

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.close(graceful=exc_type is None)


class LocalExecutor:
    """``workers`` processes on this machine (1 = inline, in this process), taken from
    ``pool`` when given (kept after the map), else started for each map."""

    def __init__(self, workers: int = 1, pool: WorkerPool | None = None):
        if workers < 1:
            raise ValueError(f"--workers must be >= 1, got {workers}; give 1 to run inline")
        self.workers = workers
        self.pool = pool

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
        """Each worker is a spawned process fed one job at a time through a pipe (pipes,
        unlike queues, leave no semaphores behind when a worker is terminated)."""
        pool = self.pool or WorkerPool()
        queue = list(reversed(jobs))  # pop() takes the first job
        finished = False
        try:
            workers = list(pool.take(min(self.workers, len(jobs))))
            for w in workers:
                w.give(fn, queue.pop())
            while any(w.job is not None for w in workers):
                busy = {w.conn: w for w in workers if w.job is not None}
                busy.update({w.proc.sentinel: w for w in workers if w.job is not None})
                for ready in mp_connection.wait(list(busy)):
                    w = busy[ready]
                    if w.job is None:  # its pipe and its sentinel were both ready
                        continue
                    res = w.take()
                    bar.update()
                    yield res
                    if not w.proc.is_alive():  # it died: a fresh one takes its place
                        w = workers[workers.index(w)] = pool.replace(w)
                    if queue:
                        w.give(fn, queue.pop())
            finished = True
        finally:
            if self.pool is None:
                pool.close(graceful=finished)
            elif not finished:  # a shared pool outlives a finished map, not a broken one
                pool.stop(graceful=False)


class _Worker:
    """One worker process and the pipe that feeds it jobs."""

    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.job = None

    def give(self, fn: Callable, job) -> None:
        self.job = job
        self.conn.send((fn, job))

    def take(self) -> JobResult:
        """The current job's result (an error when the worker died running it)."""
        job, self.job = self.job, None
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            self.proc.join(STOP_SECONDS)
            return JobResult(job, error=f"the worker process died (exit code "
                                        f"{self.proc.exitcode}) while running this job")

    def close(self) -> None:
        self.conn.close()


def _worker_main(conn) -> None:
    _init_worker()
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the main process is gone
            return
        if task is None:  # done: skip the interpreter's teardown (a second with torch)
            conn.close()
            os._exit(0)
        conn.send(_call(*task))


def stop_workers(workers: list[_Worker], graceful: bool = False,
                 grace: float = STOP_SECONDS) -> None:
    """End the workers: asked to (``graceful``, all idle), else terminated at once, and
    killed when still alive after ``grace`` seconds."""
    for w in workers:
        if not w.proc.is_alive():
            continue
        if graceful:
            try:
                w.conn.send(None)
            except OSError:
                w.proc.terminate()
        else:
            w.proc.terminate()
    deadline = time.monotonic() + (10 * grace if graceful else grace)
    for w in workers:
        w.proc.join(max(0.0, deadline - time.monotonic()))
    for w in workers:
        if w.proc.is_alive():
            w.proc.kill()
            w.proc.join(0.5)
        w.close()


@contextlib.contextmanager
def _children_ignore_sigint():
    """Launch the workers with SIGINT blocked: they inherit the mask from their first
    instruction (it survives fork and exec), so a Ctrl-C while they import prints no
    tracebacks (``_init_worker`` then ignores SIGINT and unblocks it). In the main process
    a Ctrl-C during the launch is raised as KeyboardInterrupt when the launch ends, not
    lost and not in the middle of it. The mask is per thread and the kernel hands a
    process-wide Ctrl-C to any thread that does not block it (torch's, tqdm's), so the
    main process also swaps in a handler that only records it for the launch."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    blocked = hasattr(signal, "pthread_sigmask")  # Windows has no signal masks
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if blocked else None
    try:
        yield
    finally:
        if blocked:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)  # a pending one is caught here
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
    if caught:
        raise KeyboardInterrupt
