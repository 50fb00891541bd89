"""The jobs of a local evaluation: train models, or run a method, and cache the outputs.

A :class:`Job` is picklable (the benchmark travels as JSON), so an executor may run it
inline or in another process (:mod:`unlearnkit.harness.executor`); :func:`run_job` finds the
benchmark's context (:func:`unlearnkit.harness.context.context_for`: the already prepared one
when inline) and writes the job's cache entries itself.

Same seed, same model, whatever the machine's load: every job runs with
``torch.set_num_threads(JOB_THREADS)`` (one thread), inline or in a worker. A kernel's
float reductions are split across threads, so a model trained with 2 threads differs
from the same seed trained with 1; before this, inline jobs ran with all cores and
worker jobs with cores // workers, and ``--workers`` changed the results.

Each entry is built under its lock (:func:`unlearnkit.harness.cache.entry_lock`) and checked
again once the lock is held: an entry another process built meanwhile is read, not
trained again; one that another process is building now is reported ``busy`` (the
pipeline comes back to it with ``wait=True``).
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import time
from dataclasses import dataclass, replace

import torch

from ..atomic import Busy
from ..benchmarks import stable_hash
from ..cpu_speed import on_cpu
from ..data.base import ImageSet
from ..data.loaders import TensorLoader, loader_seed
from ..models import build_model, load_state, save_checkpoint
from ..train import init_model, predict_logits, train
from . import cache as cache_mod
from .context import ORIGINAL, ORIGINAL_SEED, RETRAIN, Context, context_for

METHOD = "method"  # the kind of a method-run job
JOB_THREADS = 1  # torch threads of every job: results must not depend on the load


@dataclass(frozen=True)
class Job:
    """One unit of work: train models of ``kind`` for ``seeds``, or run ``method``."""

    bench: str  # the Benchmark as JSON (context.bench_json): picklable, hashable, readable
    cache_dir: str
    data_root: str | None
    device: str
    kind: str  # retrain | original | method
    seeds: tuple[int, ...]
    method: str = ""
    config: object = None  # the method's resolved config (a MethodConfig)
    keep_models: bool = False
    fingerprint: str = ""  # of the data (context.fingerprint): checked in the worker
    concurrent: int = 1  # jobs run at once beside this one (1: alone, its time is honest)
    wait: bool = False  # wait for entries another process is building (else report busy)


@contextlib.contextmanager
def pinned_threads(n: int = JOB_THREADS):
    """Run the block with ``n`` torch threads, then restore the previous number."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_job(job: Job) -> list[dict]:
    """Execute ``job`` (in any process) and write its cache entries; return their metadata.

    One dict per seed: the new entry's metadata, or ``{"seed", "cached": True}`` when
    another process built it meanwhile, or ``{"seed", "busy": pid}`` when another process
    is building it now (only when ``job.wait`` is false).
    """
    with pinned_threads(JOB_THREADS):
        ctx = context_for(job.bench, job.cache_dir, job.data_root, job.fingerprint or None)
        device = torch.device(job.device)
        with contextlib.ExitStack() as locks:
            out, todo = [], []
            for seed in job.seeds:
                path = entry_path(ctx, job, seed)
                try:
                    locks.enter_context(cache_mod.entry_lock(path, wait=job.wait))
                except Busy as busy:
                    out.append({"seed": seed, "busy": busy.pid})
                    continue
                if entry_ready(ctx, job.kind, seed, path):
                    out.append({"seed": seed, "cached": True})
                else:
                    todo.append(seed)
            if todo:
                out += _build(ctx, replace(job, seeds=tuple(todo)), device)
        return out


def _build(ctx: Context, job: Job, device: torch.device) -> list[dict]:
    if job.kind == METHOD:
        return [method_run(ctx, job, device)]
    if len(job.seeds) > 1:
        return train_fused(ctx, job, device)
    return [train_one(ctx, job.kind, job.seeds[0], device, concurrent=job.concurrent)]


def entry_path(ctx: Context, job: Job, seed: int):
    """The cache entry that ``job`` writes for ``seed``."""
    if job.kind == METHOD:
        return ctx.run_path(job.method, job.config.to_dict(), seed)
    return ctx.model_path(job.kind, seed)


def entry_ready(ctx: Context, kind: str, seed: int, path=None) -> bool:
    """Whether the entry is cached and readable (for the original: its weights too)."""
    path = path or ctx.model_path(kind, seed)
    if cache_mod.load_outputs(path) is None:
        return False
    return not (kind == ORIGINAL and seed == ORIGINAL_SEED) or checkpoint_ok(ctx.original_path)


def checkpoint_ok(path) -> bool:
    """Whether ``path`` holds a readable state_dict (a truncated file does not)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError):
        return False
    return isinstance(state, dict) and len(state) > 0


# ---------------------------------------------------------------- model outputs


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_outputs(net: torch.nn.Module, ctx: Context, device, meta: dict,
                  what: str = "the model") -> cache_mod.Outputs:
    """What scoring needs from one trained or unlearned network; raises
    :class:`unlearnkit.harness.cache.NonFinite` naming ``what`` when a logit is NaN or infinite."""
    logits = {name: predict_logits(net, ctx.parts[name], device=device)
              for name in ("forget", "test", "retain")}
    cache_mod.check_finite(logits, what)
    return cache_mod.Outputs(forget_logits=logits["forget"], test_logits=logits["test"],
                             retain_pred=logits["retain"].argmax(1), meta=meta)


def load_original(ctx: Context, device) -> torch.nn.Module:
    """The original model (trained by ``pipeline.ensure_original``) on ``device``."""
    net = build_model(ctx.bench.model, ctx.source.num_classes)
    try:
        state = torch.load(ctx.original_path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise RuntimeError(
            f"the cached original model {ctx.original_path} is unreadable "
            f"({type(err).__name__}: {err}); run the command again: it is rebuilt") from None
    return load_state(net, state, source=str(ctx.original_path)).to(device)


# ---------------------------------------------------------------- training


def warm_up(net: torch.nn.Module, data: ImageSet, device: torch.device) -> None:
    """One forward and backward pass of a throwaway copy of ``net`` on a few images of
    ``data``, untimed. The first call of each kernel in a fresh worker costs up to a
    second, which a notebook's 512 runs pay once; timed, it would be charged to whichever
    job a worker runs first (the cost as measured: docs/results.md)."""
    if len(data) == 0:
        return
    twin = copy.deepcopy(net).to(device).train()
    x, y = data.images[:8].to(device).float(), data.labels[:8].to(device)
    torch.nn.functional.cross_entropy(twin(x), y).backward()
    with torch.no_grad():
        twin.eval()(x)
    _sync(device)


def _train_data(ctx: Context, kind: str) -> ImageSet:
    return ctx.parts["retain"] if kind == RETRAIN else ctx.parts["train"]


def train_one(ctx: Context, kind: str, seed: int, device: torch.device,
              concurrent: int = 1) -> dict:
    """Train one model alone with the benchmark's recipe and cache its outputs."""
    b = ctx.bench
    net = on_cpu(init_model(b.model, seed, ctx.source.num_classes), device)  # as train() will
    warm_up(net, _train_data(ctx, kind), device)
    start = time.perf_counter()
    train(net, _train_data(ctx, kind), b.train, seed=seed, device=device,
          num_classes=ctx.source.num_classes, progress=False)
    _sync(device)
    meta = {"kind": kind, "seed": seed, "seconds": time.perf_counter() - start, "fused": 1,
            "threads": torch.get_num_threads(), "concurrent": concurrent}
    outputs = model_outputs(net, ctx, device, meta, f"the {kind} model of seed {seed}")
    if kind == ORIGINAL and seed == ORIGINAL_SEED:
        save_checkpoint(net, ctx.original_path)  # before its outputs: see entry_ready
    cache_mod.save_outputs(ctx.model_path(kind, seed), outputs)
    return meta


def train_fused(ctx: Context, job: Job, device: torch.device) -> list[dict]:
    """Train len(seeds) models together (:mod:`unlearnkit.fused_training`) and cache each."""
    from ..fused_training import predict_logits_many, train_many

    b, data = ctx.bench, _train_data(ctx, job.kind)
    _sync(device)
    start = time.perf_counter()
    # --fused K is honoured: the job's K seeds train as one chunk (not default_chunk's 2)
    states = train_many(b.model, data, list(job.seeds), b.train, device=device,
                        num_classes=ctx.source.num_classes, chunk=len(job.seeds),
                        progress=False)
    _sync(device)
    seconds = (time.perf_counter() - start) / len(job.seeds)
    logits = {name: predict_logits_many(b.model, states, ctx.parts[name], device=device)
              for name in ("forget", "test", "retain")}  # each [K, n, C]
    metas = []
    for i, seed in enumerate(job.seeds):
        cache_mod.check_finite({k: v[i] for k, v in logits.items()},
                               f"the {job.kind} model of seed {seed}")
        if job.kind == ORIGINAL and seed == ORIGINAL_SEED:
            save_checkpoint(states[i], ctx.original_path)  # before its outputs: see ensure_original
        meta = {"kind": job.kind, "seed": seed, "seconds": seconds, "fused": len(job.seeds),
                "threads": torch.get_num_threads(), "concurrent": job.concurrent}
        out = cache_mod.Outputs(logits["forget"][i], logits["test"][i],
                                logits["retain"][i].argmax(1), meta)
        cache_mod.save_outputs(ctx.model_path(job.kind, seed), out)
        metas.append(meta)
    return metas


# ---------------------------------------------------------------- method runs


def method_loaders(ctx: Context, seed: int, device) -> tuple[TensorLoader, ...]:
    """Retain, forget and validation loaders for one run: shuffled, seeded per run."""
    bs = ctx.bench.loader_batch_size
    return tuple(
        TensorLoader(ctx.parts[name], bs, shuffle=True, seed=loader_seed(seed, i), device=device)
        for i, name in enumerate(("retain", "forget", "validation"))
    )


_WARMED: set[tuple[str, str]] = set()  # (method, config hash) already run in this process


def warm_up_method(ctx: Context, job: Job, net: torch.nn.Module, device: torch.device) -> None:
    """Run the method once, untimed and thrown away, the first time this process times it.

    A fresh worker's first run pays one-time costs (each kernel's first call, each new
    tensor shape's set-up), which a notebook's 512 runs pay once (see :func:`warm_up`).
    Fresh loaders follow, so the
    timed run is exactly the run it would have been.
    """
    from ..methods import run_method

    key = (job.method, stable_hash(job.config.to_dict()))
    if key in _WARMED:
        return
    run_method(job.method, copy.deepcopy(net), *method_loaders(ctx, job.seeds[0], device),
               seed=job.seeds[0], cfg=job.config, scenario_kind=ctx.split.kind)
    _WARMED.add(key)


def method_run(ctx: Context, job: Job, device: torch.device) -> dict:
    """One unlearning run from the original model; outputs cached, weights if asked."""
    from ..methods import run_method

    seed, cfg = job.seeds[0], job.config
    net = on_cpu(load_original(ctx, device), device)  # as the references trained: same speed-up
    if job.concurrent == 1:  # a run whose time the time rule reads: time the steady state
        warm_up_method(ctx, job, net, device)
    loaders = method_loaders(ctx, seed, device)
    _sync(device)
    start = time.perf_counter()
    net = run_method(job.method, net, *loaders, seed=seed, cfg=cfg, scenario_kind=ctx.split.kind)
    _sync(device)
    meta = {"kind": "method", "method": job.method, "seed": seed,
            "seconds": time.perf_counter() - start, "threads": torch.get_num_threads(),
            "concurrent": job.concurrent}
    path = ctx.run_path(job.method, cfg.to_dict(), seed)
    settings = ", ".join(f"{k}={v}" for k, v in cfg.changed().items()) or "defaults"
    what = f"method {job.method} ({settings}), run {seed}"
    cache_mod.save_outputs(path, model_outputs(net, ctx, device, meta, what))
    if job.keep_models:
        save_checkpoint(net, path.with_suffix(".pth"))
    return meta
