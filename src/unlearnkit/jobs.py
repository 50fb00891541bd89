"""The jobs of a local evaluation: train models, or run a method, and cache the outputs.

A :class:`Job` is picklable (the benchmark travels as JSON), so an executor may run it
inline or in another process (:mod:`unlearnkit.executor`); :func:`run_job` finds the
benchmark's context (:func:`unlearnkit.context.context_for`: the already prepared one
when inline) and writes the job's cache entries itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from . import cache as cache_mod
from .context import ORIGINAL, ORIGINAL_SEED, RETRAIN, Context, context_for
from .data.base import ImageSet
from .data.loaders import TensorLoader, loader_seed
from .models import build_model, load_state, save_checkpoint
from .train import init_model, predict_logits, train

METHOD = "method"  # the kind of a method-run job


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


def run_job(job: Job) -> list[dict]:
    """Execute ``job`` (in any process) and write its cache entries; return their metadata."""
    ctx = context_for(job.bench, job.cache_dir, job.data_root)
    device = torch.device(job.device)
    if job.kind == METHOD:
        return [method_run(ctx, job, device)]
    if len(job.seeds) > 1:
        return train_fused(ctx, job, device)
    return [train_one(ctx, job.kind, job.seeds[0], device)]


# ---------------------------------------------------------------- model outputs


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_outputs(net: torch.nn.Module, ctx: Context, device, meta: dict) -> cache_mod.Outputs:
    """What scoring needs from one trained or unlearned network."""
    return cache_mod.Outputs(
        forget_logits=predict_logits(net, ctx.parts["forget"], device=device),
        test_logits=predict_logits(net, ctx.parts["test"], device=device),
        retain_pred=predict_logits(net, ctx.parts["retain"], device=device).argmax(1),
        meta=meta,
    )


def load_original(ctx: Context, device) -> torch.nn.Module:
    """The original model (trained by ``pipeline.ensure_original``) on ``device``."""
    net = build_model(ctx.bench.model, ctx.source.num_classes)
    state = torch.load(ctx.original_path, map_location="cpu", weights_only=True)
    return load_state(net, state, source=str(ctx.original_path)).to(device)


# ---------------------------------------------------------------- training


def _train_data(ctx: Context, kind: str) -> ImageSet:
    return ctx.parts["retain"] if kind == RETRAIN else ctx.parts["train"]


def train_one(ctx: Context, kind: str, seed: int, device: torch.device) -> dict:
    """Train one model alone with the benchmark's recipe and cache its outputs."""
    b = ctx.bench
    net = init_model(b.model, seed, ctx.source.num_classes)
    _sync(device)
    start = time.perf_counter()
    train(net, _train_data(ctx, kind), b.train, seed=seed, device=device,
          num_classes=ctx.source.num_classes, progress=False)
    _sync(device)
    meta = {"kind": kind, "seed": seed, "seconds": time.perf_counter() - start, "fused": 1}
    cache_mod.save_outputs(ctx.model_path(kind, seed), model_outputs(net, ctx, device, meta))
    if kind == ORIGINAL and seed == ORIGINAL_SEED:
        save_checkpoint(net, ctx.original_path)
    return meta


def train_fused(ctx: Context, job: Job, device: torch.device) -> list[dict]:
    """Train len(seeds) models together (:mod:`unlearnkit.fused_training`) and cache each."""
    from .fused_training import predict_logits_many, train_many

    b, data = ctx.bench, _train_data(ctx, job.kind)
    _sync(device)
    start = time.perf_counter()
    states = train_many(b.model, data, list(job.seeds), b.train, device=device,
                        num_classes=ctx.source.num_classes, progress=False)
    _sync(device)
    seconds = (time.perf_counter() - start) / len(job.seeds)
    logits = {name: predict_logits_many(b.model, states, ctx.parts[name], device=device)
              for name in ("forget", "test", "retain")}  # each [K, n, C]
    metas = []
    for i, seed in enumerate(job.seeds):
        if job.kind == ORIGINAL and seed == ORIGINAL_SEED:
            save_checkpoint(states[i], ctx.original_path)  # before its outputs: see ensure_original
        meta = {"kind": job.kind, "seed": seed, "seconds": seconds, "fused": len(job.seeds)}
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


def method_run(ctx: Context, job: Job, device: torch.device) -> dict:
    """One unlearning run from the original model; outputs cached, weights if asked."""
    from .methods import run_method

    seed, cfg = job.seeds[0], job.config
    net = load_original(ctx, device)
    loaders = method_loaders(ctx, seed, device)
    _sync(device)
    start = time.perf_counter()
    net = run_method(job.method, net, *loaders, seed=seed, cfg=cfg, scenario_kind=ctx.split.kind)
    _sync(device)
    meta = {"kind": "method", "method": job.method, "seed": seed,
            "seconds": time.perf_counter() - start}
    path = ctx.run_path(job.method, cfg.to_dict(), seed)
    cache_mod.save_outputs(path, model_outputs(net, ctx, device, meta))
    if job.keep_models:
        save_checkpoint(net, path.with_suffix(".pth"))
    return meta
