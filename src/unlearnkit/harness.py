"""The local evaluation: score a method with the competition's metric, on local data.

Pipeline (every model's outputs cached under ``<cache>/<benchmark key>/``):

1. split (saved) -> 2. original model trained on retain + forget (weights kept) ->
3. N reference models retrained on retain only, one seed each -> 4. N runs of the
method from the original, one seed each -> 5. logits of every model on forget and
test, predictions on retain -> 6. scores.

Two oracles are always scored against the same references: ``retrain`` (N more
retrained models: the practical ceiling, the metric's noise floor) and ``original``
(N models trained on retain + forget: no unlearning, the floor). References use seeds
0..N-1 and the retrain oracle seeds N..2N-1 of the same cache folder, so a larger N
reuses a smaller one's models and two methods on one benchmark share them all.

Each model is an independent job run by an executor (:mod:`unlearnkit.executor`).
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import cache as cache_mod
from .benchmarks import Benchmark, benchmark_from_dict, stable_hash
from .data.base import ImageSet, SourceData
from .data.loaders import TensorLoader, loader_seed
from .data.sources import get_source
from .data.splits import Split, make_split
from .executor import LocalExecutor
from .models import build_model, load_state, save_checkpoint
from .train import init_model, predict_logits, train

RETRAIN, ORIGINAL = "retrain", "original"
ORIGINAL_SEED = 0


# ---------------------------------------------------------------- context


@dataclass
class Context:
    """A benchmark made concrete: its data, its split and its cache folder."""

    bench: Benchmark
    source: SourceData
    split: Split
    parts: dict[str, ImageSet]  # retain, forget, validation, test, train
    folder: Path

    @property
    def original_path(self) -> Path:
        return self.folder / "original.pth"

    def model_path(self, kind: str, seed: int) -> Path:
        return self.folder / "models" / kind / f"{seed}.npz"

    def run_path(self, method: str, hp: dict, seed: int) -> Path:
        return self.folder / "runs" / method / stable_hash(hp) / f"{seed}.npz"


def prepare(bench: Benchmark, cache_dir: str | Path | None = None,
            data_root: str | Path | None = None, progress: bool | None = None) -> Context:
    """Load the benchmark's data and its split (made once, then read from the cache)."""
    source = get_source(bench.source, root=data_root, progress=progress, **bench.source_options)
    folder = cache_mod.cache_root(cache_dir) / f"{bench.name}-{bench.key()}"
    split_path = folder / "split.json"
    if split_path.is_file():
        split = Split.load(split_path).check(source)
    else:
        split = make_split(source, bench.scenario, seed=bench.split_seed)
        split.save(split_path)
    parts = split.parts(source)
    parts["train"] = source.train.subset(np.concatenate([split.retain, split.forget]))
    return Context(bench, source, split, parts, folder)


@functools.lru_cache(maxsize=2)
def _worker_context(bench_json: str, cache_dir: str, data_root: str | None) -> Context:
    """One context per worker process (data loaded once, not per job)."""
    return prepare(benchmark_from_dict(json.loads(bench_json)), cache_dir, data_root)


# ---------------------------------------------------------------- jobs


@dataclass(frozen=True)
class Job:
    """One unit of work: train models of ``kind`` for ``seeds``, or run ``method``."""

    bench: str  # the Benchmark as JSON: picklable, hashable, readable
    cache_dir: str
    data_root: str | None
    device: str
    kind: str  # retrain | original | method
    seeds: tuple[int, ...]
    method: str = ""
    config: object = None  # the method's resolved config (a MethodConfig)
    keep_models: bool = False


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


def run_job(job: Job) -> list[dict]:
    """Execute ``job`` (in any process) and write its cache entries; return their metadata."""
    ctx = _worker_context(job.bench, job.cache_dir, job.data_root)
    device = torch.device(job.device)
    if job.kind == "method":
        return [_method_run(ctx, job, device)]
    if len(job.seeds) > 1:
        return _train_fused(ctx, job, device)
    return [_train_one(ctx, job.kind, job.seeds[0], device)]


def _train_data(ctx: Context, kind: str) -> ImageSet:
    return ctx.parts["retain"] if kind == RETRAIN else ctx.parts["train"]


def _train_one(ctx: Context, kind: str, seed: int, device: torch.device) -> dict:
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


def _train_fused(ctx: Context, job: Job, device: torch.device) -> list[dict]:
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


def load_original(ctx: Context, device) -> torch.nn.Module:
    """The original model (trained by :func:`ensure_original`) on ``device``."""
    net = build_model(ctx.bench.model, ctx.source.num_classes)
    state = torch.load(ctx.original_path, map_location="cpu", weights_only=True)
    return load_state(net, state, source=str(ctx.original_path)).to(device)


def method_loaders(ctx: Context, seed: int, device) -> tuple[TensorLoader, ...]:
    """Retain, forget and validation loaders for one run: shuffled, seeded per run."""
    bs = ctx.bench.loader_batch_size
    return tuple(
        TensorLoader(ctx.parts[name], bs, shuffle=True, seed=loader_seed(seed, i), device=device)
        for i, name in enumerate(("retain", "forget", "validation"))
    )


def _method_run(ctx: Context, job: Job, device: torch.device) -> dict:
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


# ---------------------------------------------------------------- orchestration


@dataclass
class Plan:
    """How to run the jobs: where, how many at once, how many fused, cache and data."""

    device: str = "cpu"
    workers: int = 1
    fused: int = 1
    cache_dir: str | None = None
    data_root: str | None = None
    fresh: bool = False
    keep_models: bool = False
    progress: bool = True
    executor: object = field(default=None, repr=False)

    def make_executor(self):
        return self.executor or LocalExecutor(self.workers)


def _job(ctx: Context, plan: Plan, kind: str, seeds, **extra) -> Job:
    return Job(json.dumps(ctx.bench.to_dict(), sort_keys=True), str(cache_mod.cache_root(plan.cache_dir)), plan.data_root,
               plan.device, kind, tuple(seeds), **extra)


def _missing(paths_by_seed: dict[int, Path], fresh: bool) -> list[int]:
    """Seeds whose cache entry is absent or unreadable (all of them when ``fresh``)."""
    out = []
    for seed, path in paths_by_seed.items():
        if fresh:
            path.unlink(missing_ok=True)
        if cache_mod.load_outputs(path) is None:
            out.append(seed)
    return out


def _run(plan: Plan, jobs: list[Job], desc: str) -> list[str]:
    """Run ``jobs``; return the errors (as text) of those that failed."""
    errors = []
    for res in plan.make_executor().map(run_job, jobs, desc=desc, progress=plan.progress):
        if res.error:
            errors.append(f"seeds {list(res.job.seeds)}: {res.error}")
    return errors


def ensure_original(ctx: Context, plan: Plan) -> None:
    """Train and keep the original model (seed 0 of kind ``original``) if needed."""
    if plan.fresh or not ctx.original_path.is_file() or \
            cache_mod.load_outputs(ctx.model_path(ORIGINAL, ORIGINAL_SEED)) is None:
        ctx.original_path.unlink(missing_ok=True)
        errors = _run(plan, [_job(ctx, plan, ORIGINAL, [ORIGINAL_SEED])], "original model")
        if errors:
            raise RuntimeError(f"training the original model failed: {errors[0]}")


def ensure_models(ctx: Context, plan: Plan, kind: str, seeds: list[int], desc: str) -> None:
    """Train the models of ``kind`` whose outputs are not cached yet (fused in chunks)."""
    todo = _missing({s: ctx.model_path(kind, s) for s in seeds}, plan.fresh)
    if not todo:
        return
    k = max(1, plan.fused)
    jobs = [_job(ctx, plan, kind, todo[i:i + k]) for i in range(0, len(todo), k)]
    errors = _run(plan, jobs, desc)
    if errors:
        raise RuntimeError(f"{desc}: {len(errors)} job(s) failed; first: {errors[0]}")


def ensure_runs(ctx: Context, plan: Plan, method: str, cfg, seeds: list[int]) -> list[str]:
    """Run the method (``cfg``: its resolved config) for the seeds not cached yet; return
    the errors of failed runs."""
    todo = _missing({s: ctx.run_path(method, cfg.to_dict(), s) for s in seeds}, plan.fresh)
    jobs = [_job(ctx, plan, "method", [s], method=method, config=cfg,
                 keep_models=plan.keep_models) for s in todo]
    return _run(plan, jobs, f"{method} runs")


def load_entries(paths: list[Path]) -> list[cache_mod.Outputs]:
    """Cached outputs of ``paths``; every one must exist."""
    out = []
    for p in paths:
        entry = cache_mod.load_outputs(p)
        if entry is None:
            raise RuntimeError(f"missing cache entry {p}: the job that makes it failed")
        out.append(entry)
    return out
