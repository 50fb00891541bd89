"""Run the harness's jobs as Ray tasks: this machine's cores, or a whole cluster.

:class:`RayExecutor` has the :class:`unlearnkit.harness.executor.LocalExecutor` interface
(``map(fn, jobs, desc, progress)`` yielding :class:`~unlearnkit.harness.executor.JobResult` as
jobs finish), so the pipeline does not change. Each job (one model, one method run or
one whole fused chunk) is one Ray task asking for one CPU and, for a CUDA job, a share
of a GPU (:func:`resources`). The job writes its own cache entries atomically, as under
the process executor, so a run can switch executors halfway and reuse everything.

Faults: a worker that dies mid-job (killed, out of memory, node lost) is retried by Ray
(:data:`MAX_RETRIES`); its half-written temporary file never replaces an entry and is
swept as a dead writer's leftover. A job that raises is caught in the worker and
reported once, never retried. Ctrl-C cancels the outstanding tasks (a running one gets
a KeyboardInterrupt, which removes its temporary file); finished entries stay cached.

Without an address a local Ray instance sized to this machine is started; with one the
driver joins that cluster after a short TCP probe (an unreachable address fails in
seconds). The workers must see the same cache and data paths (a shared filesystem);
the first job checks that and stops the run with :class:`NotVisible` when not.
Ray is an optional extra (``pip install -e .[ray]``); nothing else imports this module.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from tqdm.auto import tqdm

from .executor import JobResult, _call

INSTALL_HINT = "the Ray executor needs Ray: install the extra: pip install -e .[ray]"
MAX_RETRIES = 3  # a job whose worker dies is run again this many times
PROBE_SECONDS = 3.0  # how long the TCP probe of --address waits
CANCEL_SECONDS = 5.0  # cancelled tasks get this long to unwind before the driver goes on
GRACE_SECONDS = 2.0  # tasks finishing this soon are not cancelled (a Ray race: see cancel)
GPU_SHARE = 0.25  # of a GPU, for a one-model CUDA job (several share a card)
_started_here = False  # whether this process started the local Ray instance


class NotVisible(RuntimeError):
    """A worker cannot see the cache (or data) folder that the driver uses."""


def import_ray():
    """The ``ray`` module, or an error that says which extra to install."""
    try:
        import ray
    except ImportError:
        raise RuntimeError(INSTALL_HINT) from None
    return ray


def check_address(address: str, timeout: float = PROBE_SECONDS) -> None:
    """Refuse an address whose port does not answer within ``timeout`` seconds."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, the "
                         "address `ray start --head` prints)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise RuntimeError(
            f"no Ray cluster answers at {address} ({type(err).__name__}: {err}, after "
            f"{timeout:g} s); start one there with `ray start --head --port={port}`, or "
            "leave out --address to run a local Ray instance") from None


def connect(address: str | None = None, num_cpus: int | None = None):
    """Join the cluster at ``address``, or start a local instance (``num_cpus``: this
    machine's cores by default); once per process. Returns the ``ray`` module."""
    global _started_here
    ray = import_ray()
    if ray.is_initialized():
        return ray
    quiet = {"logging_level": "ERROR", "log_to_driver": True}
    if address:
        check_address(address)
        ray.init(address=address, **quiet)
    else:
        cpus = num_cpus or len(os.sched_getaffinity(0))
        ray.init(num_cpus=cpus, include_dashboard=False, **quiet)
        _started_here = True
    return ray


def disconnect() -> None:
    """Leave the cluster (and stop the local instance this process started)."""
    global _started_here
    ray = import_ray()
    if ray.is_initialized():
        ray.shutdown()
    _started_here = False


def resources(job, gpus_per_job: float | None = None) -> dict:
    """A job's Ray resources: one CPU; on CUDA a whole GPU for a fused chunk (it fills
    one), ``gpus_per_job`` (default :data:`GPU_SHARE`) for a one-model job."""
    out = {"num_cpus": 1}
    if str(getattr(job, "device", "cpu")).startswith("cuda"):
        fused = len(getattr(job, "seeds", ())) > 1
        out["num_gpus"] = 1.0 if fused else (gpus_per_job or GPU_SHARE)
    return out


def check_visible(job) -> None:
    """Raise :class:`NotVisible` when this worker cannot see or write the job's cache
    folder (the driver wrote the benchmark's split there), or cannot see its data root."""
    cache_dir = getattr(job, "cache_dir", None)
    if not cache_dir:
        return
    where = f"on the Ray worker {socket.gethostname()}"
    need = Path(cache_dir)
    fp = getattr(job, "fingerprint", "")
    if fp:
        from ..benchmarks import benchmark_from_dict
        from .context import FINGERPRINT_CHARS, bench_folder

        bench = benchmark_from_dict(json.loads(job.bench))
        need = bench_folder(bench, cache_dir) / fp[:FINGERPRINT_CHARS] / "split.json"
    if not need.exists() or not os.access(need.parent, os.W_OK):
        raise NotVisible(
            f"{where}, the cache {cache_dir} is not there or not writable ({need} is "
            "missing): every node must see the cache at the same path (a shared "
            "filesystem such as NFS); give --cache a shared folder")
    data_root = getattr(job, "data_root", None)
    if data_root and not Path(data_root).exists():
        raise NotVisible(f"{where}, the data root {data_root} is not there: every node must "
                         "see the data at the same path (a shared filesystem); give --data "
                         "a shared folder")


def for_workers(job):
    """``job`` with absolute cache and data paths (a worker does not start in the driver's
    folder, nor see its environment: ``$UNLEARNKIT_DATA`` travels as the data root)."""
    if not dataclasses.is_dataclass(job) or not hasattr(job, "cache_dir"):
        return job
    data = getattr(job, "data_root", None) or os.environ.get("UNLEARNKIT_DATA")
    return dataclasses.replace(job, cache_dir=os.path.abspath(job.cache_dir),
                               data_root=os.path.abspath(data) if data else None)


def _task(fn: Callable, job) -> JobResult:
    """A job in a Ray worker: check the shared folders, pin threads, run it."""
    import torch

    from .jobs import JOB_THREADS

    check_visible(job)
    torch.set_num_threads(JOB_THREADS)
    os.environ["OMP_NUM_THREADS"] = str(JOB_THREADS)
    return _call(fn, job)  # the job's own errors come back as results: never retried


class RayExecutor:
    """Jobs as Ray tasks on a local instance or on the cluster at ``address``."""

    def __init__(self, address: str | None = None, gpus_per_job: float | None = None,
                 num_cpus: int | None = None, max_retries: int = MAX_RETRIES):
        if gpus_per_job is not None and (gpus_per_job <= 0 or (
                gpus_per_job > 1 and not float(gpus_per_job).is_integer())):
            raise ValueError(f"--gpus-per-job must be in (0, 1] or a whole number, got "
                             f"{gpus_per_job}")
        self.address, self.gpus_per_job = address, gpus_per_job
        self.num_cpus, self.max_retries = num_cpus, max_retries

    def slots(self) -> int:
        """How many one-CPU jobs the cluster runs at once."""
        ray = connect(self.address, self.num_cpus)
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map(self, fn: Callable, jobs: Iterable, desc: str = "jobs",
            progress: bool = True) -> Iterator[JobResult]:
        """Submit every job, yield results as they finish; stop the rest on Ctrl-C."""
        jobs = list(jobs)
        if not jobs:
            return
        ray = connect(self.address, self.num_cpus)
        # a GPU task gets a fresh worker process (max_calls=1): a process keeps the GPU it
        # first initialised, whatever GPU Ray hands its next task
        tasks = {False: ray.remote(_task), True: ray.remote(num_gpus=1, max_calls=1)(_task)}
        pending = {}
        for job in jobs:
            opts = resources(job, self.gpus_per_job)
            task = tasks["num_gpus" in opts]
            ref = task.options(max_retries=self.max_retries, retry_exceptions=False,
                               **opts).remote(fn, for_workers(job))
            pending[ref] = job
        bar = tqdm(total=len(jobs), desc=f"{desc} (ray)", disable=not progress)
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    res = self._result(ray, ref, pending.pop(ref))
                    bar.update()
                    yield res
        except KeyboardInterrupt:
            cancel(ray, list(pending))
            pending.clear()
            if _started_here:  # the caller may leave with os._exit: stop the instance now
                disconnect()
            raise
        finally:
            bar.close()
            if pending:  # the caller stopped reading
                cancel(ray, list(pending))

    def _result(self, ray, ref, job) -> JobResult:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as err:
            if isinstance(err.cause, NotVisible):
                raise NotVisible(str(err.cause)) from None
            return JobResult(job, error=f"{type(err.cause).__name__}: {err.cause}")
        except ray.exceptions.RayError as err:  # the worker or its node died, every retry
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            return JobResult(job, error=f"the Ray worker died while running this job, "
                                        f"{self.max_retries} retries included "
                                        f"({type(err).__name__}: {first})")


def cancel(ray, refs: list, grace: float = GRACE_SECONDS) -> None:
    """Cancel ``refs``: queued ones are dropped, running ones get a KeyboardInterrupt
    (their temporary files are removed); wait a little for them to unwind.

    Tasks that finish within ``grace`` seconds are left alone: cancelling a task whose
    reply is on its way crashes Ray's driver (2.60: ``Check failed: it !=
    submissible_tasks_.end() Tried to complete task that was not pending``, the race of
    ray-project/ray#54798), which ends the whole process with exit code 1."""
    try:
        _, running = ray.wait(refs, num_returns=len(refs), timeout=grace)
    except Exception:
        running = refs
    for ref in running:
        try:
            ray.cancel(ref, force=False)
        except Exception:  # already finished or gone
            pass
    try:
        ray.wait(running, num_returns=len(running), timeout=CANCEL_SECONDS)
    except Exception:
        pass
