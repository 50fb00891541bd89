"""The local evaluation: score a method with the competition's metric, on local data.

Pipeline (every model's outputs cached under ``<cache>/<benchmark key>/``,
:mod:`unlearnkit.harness.context`):

1. split (saved) -> 2. original model trained on retain + forget (weights kept) ->
3. N reference models retrained on retain only, one seed each -> 4. N runs of the
method from the original, one seed each -> 5. logits of every model on forget and
test, predictions on retain -> 6. scores, intervals and the time rule, from the scoring
core (:mod:`unlearnkit.harness.scoring_core`), which every scoring command shares.

Two oracles are always scored against the same references: ``retrain`` (N more
retrained models: the practical ceiling, the metric's noise floor) and ``original``
(N models trained on retain + forget: no unlearning, the floor). References use seeds
0..N-1 and the retrain oracle seeds N..2N-1 of the same cache folder, so a larger N
reuses a smaller one's models and two methods on one benchmark share them all.

Each model is an independent job (:mod:`unlearnkit.harness.jobs`) run by an executor
(:mod:`unlearnkit.harness.executor`). :func:`local_eval` and :func:`evaluate_states` return an
:class:`EvalResult`, which :mod:`unlearnkit.report` writes out.

Every check that needs no data (N, the methods, their hyperparameters, the scenario,
the plan) runs in :func:`check_request` before the first training. Times are honest:
each job runs with one thread (:data:`unlearnkit.harness.jobs.JOB_THREADS`), and the time rule
reads only runs that ran alone (reference 0 always; with ``--workers`` > 1 one method
run is run alone first), see ``summary['timing']``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_path
from ..benchmarks import Benchmark, scenario_kind
from ..metrics.model_sets import Outputs
from ..paths import cache_root
from ..report import EvalResult
from . import cache as cache_mod
from . import jobs
from .context import ORIGINAL, ORIGINAL_SEED, RETRAIN, Context, bench_json, prepare
from .executor import LocalExecutor, WorkerPool
from .scoring_core import (
    ORIGINAL_ORACLE,
    RETRAIN_ORACLE,
    References,
    Scores,
    check_models,
    score_sets,
    timed_alone,
    timing,
)

# ---------------------------------------------------------------- plan and result


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
    executor: object = field(default=None, repr=False)  # an executor object (tests, tools)
    engine: str = "process"  # process | ray (unlearnkit.harness.ray_executor, imported only then)
    address: str | None = None  # the Ray cluster to join (None: a local instance)
    gpus_per_job: float | None = None  # a one-model CUDA job's share of a GPU under Ray
    pool: WorkerPool | None = field(default=None, repr=False, compare=False)  # one_pool's

    def make_executor(self):
        if self.executor is not None:
            return self.executor
        if self.engine == "ray":
            from .ray_executor import RayExecutor

            return RayExecutor(self.address, gpus_per_job=self.gpus_per_job)
        return LocalExecutor(self.workers, self.pool)


@contextlib.contextmanager
def one_pool(plan: Plan) -> Iterator[Plan]:
    """``plan`` with one pool of worker processes for the whole command: each worker
    imports torch and prepares the benchmark once, then runs the jobs of every stage
    (oracles, references, each method's runs). ``plan`` itself when it has a pool
    already, runs inline (one worker), or runs on Ray or a given executor."""
    if plan.pool is not None or plan.workers == 1 or plan.engine != "process" \
            or plan.executor is not None:
        yield plan
        return
    with WorkerPool() as pool:
        yield dataclasses.replace(plan, pool=pool)


# ---------------------------------------------------------------- jobs


def note(text: str) -> None:
    """Tell the person running the command (stderr, even with --quiet)."""
    print(f"note: {text}", file=sys.stderr, flush=True)


def check_plan(plan: Plan) -> None:
    """Refuse a plan that cannot run, before any work."""
    if plan.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {plan.workers}; give 1 to run inline")
    if plan.fused < 1:
        raise ValueError(f"--fused must be >= 1, got {plan.fused}; give 1 to train one model "
                         "per job")
    if plan.engine not in ("process", "ray"):
        raise ValueError(f"--executor must be process or ray, got {plan.engine!r}")
    if plan.engine != "ray" and (plan.address or plan.gpus_per_job):
        raise ValueError("--address and --gpus-per-job are for the Ray executor; add "
                         "--executor ray")
    if plan.engine == "ray" and plan.executor is None:
        from .ray_executor import check_address, import_ray

        import_ray()  # installed? (else: which extra to install)
        plan.make_executor()  # its settings are valid?
        if plan.address:
            check_address(plan.address)  # answers? (else an error in seconds, not a hang)


def check_request(bench: Benchmark, methods: list[str], overrides: dict | None = None,
                  per_method: dict[str, dict] | None = None) -> dict:
    """Every check of a local evaluation that needs no data, before the first training:
    N, the scenario text, each method's name, hyperparameters and scenarios. Returns
    each method's resolved config (:func:`unlearnkit.method_settings.method_settings`):
    defaults, its YAML, the benchmark's overrides, then ``overrides`` (for every method)
    and ``per_method[name]``."""
    from ..method_settings import method_settings
    from ..methods import check_serves

    check_models(bench.num_models, "N")
    kind = scenario_kind(bench.scenario)
    where = f"scenario {bench.scenario!r} of benchmark {bench.name!r}"
    cfgs = {}
    for name in methods:
        sets = {**(overrides or {}), **(per_method or {}).get(name, {})}
        cfgs[name] = method_settings(name, bench, sets=sets).config
        check_serves(name, cfgs[name], kind, where, otherwise=" or another --scenario")
    return cfgs


def _job(ctx: Context, plan: Plan, kind: str, seeds, **extra) -> jobs.Job:
    return jobs.Job(bench_json(ctx.bench), str(cache_root(plan.cache_dir)),
                    plan.data_root, plan.device, kind, tuple(seeds),
                    fingerprint=ctx.fingerprint, **extra)


def _at_once(plan: Plan, n_jobs: int) -> int:
    """How many jobs run at the same time (1: each runs alone)."""
    if plan.executor is not None:
        return plan.workers
    slots = plan.make_executor().slots() if plan.engine == "ray" else plan.workers
    return max(1, min(slots, n_jobs))


def _missing(paths_by_seed: dict[int, Path], fresh: bool) -> list[int]:
    """Seeds whose cache entry is absent or unreadable (all of them when ``fresh``)."""
    out = []
    for seed, path in paths_by_seed.items():
        if fresh:
            path.unlink(missing_ok=True)
        if cache_mod.load_outputs(path, note=note) is None:
            out.append(seed)
    return out


def _run(plan: Plan, todo: list[jobs.Job], desc: str) -> list[str]:
    """Run the jobs ``todo``; return the errors (as text) of those that failed.

    Entries that another process is building are waited for afterwards (then read, or
    built here if that process died without them).
    """
    errors, busy, pids = [], [], set()
    for res in plan.make_executor().map(jobs.run_job, todo, desc=desc, progress=plan.progress):
        if res.error:
            errors.append(f"seeds {list(res.job.seeds)}: {res.error}")
            continue
        held = [m for m in res.value or [] if "busy" in m]
        if held:
            busy.append(dataclasses.replace(res.job, seeds=tuple(m["seed"] for m in held),
                                            wait=True))
            pids |= {str(m["busy"]) for m in held}
    if busy:
        n = sum(len(job.seeds) for job in busy)
        note(f"{desc}: {n} model(s) are being built by another process (PID "
             f"{', '.join(sorted(pids))}) sharing this cache; waiting for them rather than "
             "training them twice")
        errors += _run(plan, busy, f"{desc} (waiting)")
    return errors


def ensure_original(ctx: Context, plan: Plan) -> None:
    """Train and keep the original model (seed 0 of kind ``original``) if needed: also
    when its weights file is unreadable (e.g. truncated)."""
    if plan.fresh:
        ctx.original_path.unlink(missing_ok=True)
        ctx.model_path(ORIGINAL, ORIGINAL_SEED).unlink(missing_ok=True)
    if jobs.entry_ready(ctx, ORIGINAL, ORIGINAL_SEED):
        return
    if ctx.original_path.is_file() and not jobs.checkpoint_ok(ctx.original_path):
        note(f"the cached original model {ctx.original_path} is unreadable (truncated?); "
             "it is trained again")
    errors = _run(plan, [_job(ctx, plan, ORIGINAL, [ORIGINAL_SEED])], "original model")
    if errors:
        raise RuntimeError(f"training the original model failed: {errors[0]}")


def ensure_models(ctx: Context, plan: Plan, kind: str, seeds: list[int], desc: str) -> None:
    """Train the models of ``kind`` whose outputs are not cached yet (fused in chunks)."""
    todo = _missing({s: ctx.model_path(kind, s) for s in seeds}, plan.fresh)
    if not todo:
        return
    k = max(1, plan.fused)
    chunks = [todo[i:i + k] for i in range(0, len(todo), k)]
    at_once = _at_once(plan, len(chunks))
    errors = _run(plan, [_job(ctx, plan, kind, c, concurrent=at_once) for c in chunks], desc)
    if errors:
        raise RuntimeError(f"{desc}: {len(errors)} job(s) failed; first: {errors[0]}")


def ensure_runs(ctx: Context, plan: Plan, method: str, cfg, seeds: list[int]) -> list[str]:
    """Run the method (``cfg``: its resolved config) for the seeds not cached yet; return
    the errors of failed runs.

    When runs go several at once and no cached run of this method was timed alone, the
    first one runs alone first: its time is the one the time rule reads.
    """
    paths = {s: ctx.run_path(method, cfg.to_dict(), s) for s in seeds}
    if not plan.fresh:
        _reuse_delegated(ctx, cfg, paths)
    todo = _missing(paths, plan.fresh)

    def job(seed: int, at_once: int) -> jobs.Job:
        return _job(ctx, plan, jobs.METHOD, [seed], method=method, config=cfg,
                    keep_models=plan.keep_models, concurrent=at_once)

    errors = []
    cached = [cache_mod.load_outputs(paths[s]) for s in seeds if s not in todo]
    if todo and _at_once(plan, len(todo)) > 1 and not any(timed_alone(e) for e in cached):
        alone = dataclasses.replace(plan, workers=1)
        errors += _run(alone, [job(todo[0], 1)], f"{method} run {todo[0]} (timed alone)")
        todo = todo[1:]
    at_once = _at_once(plan, len(todo))
    return errors + _run(plan, [job(s, at_once) for s in todo], f"{method} runs")


def _reuse_delegated(ctx: Context, cfg, paths: dict[int, Path]) -> None:
    """Fill missing entries of a config whose run is another method's run with the same
    seed (a mixture's component, ``cfg.delegate``) from that method's cached entry."""
    for seed, path in paths.items():
        target = cfg.delegate(seed)
        if target is None:
            return
        source = ctx.run_path(target[0], target[1].to_dict(), seed)
        if not path.exists() and cache_mod.load_outputs(source) is not None:
            with atomic_path(path) as tmp:
                shutil.copyfile(source, tmp)


def load_entries(paths: list[Path]) -> list[Outputs]:
    """Cached outputs of ``paths``; every one must exist."""
    out = []
    for p in paths:
        entry = cache_mod.load_outputs(p)
        if entry is None:
            raise RuntimeError(f"missing cache entry {p}: the job that makes it failed")
        out.append(entry)
    return out


def prepare_references(bench: Benchmark, plan: Plan) -> tuple[Context, dict]:
    """Train whatever is missing of: the original, the references and both oracles.

    Returns the context and the cached outputs of ``refs``, ``retrain`` and ``original``.
    """
    ctx = prepare_context(bench, plan)
    return ctx, ensure_references(ctx, plan)


def prepare_context(bench: Benchmark, plan: Plan) -> Context:
    """The plan and N checked, then the benchmark made concrete (data and split; no
    training)."""
    check_plan(plan)
    check_models(bench.num_models, "N")
    ctx = prepare(bench, plan.cache_dir, plan.data_root, plan.progress)
    for text in ctx.notes:
        note(text)
    return ctx


def ensure_references(ctx: Context, plan: Plan) -> dict:
    """The original, the references and both oracles trained where missing; their cached
    outputs as ``refs``, ``retrain`` and ``original``."""
    n = ctx.bench.num_models
    oracle = list(range(1, n + 1))  # the original oracle: seeds 1..N of kind original
    if plan.fused > 1:  # the original (seed 0) trains fused with its oracle
        ensure_models(ctx, plan, ORIGINAL, [ORIGINAL_SEED] + oracle, "original + original oracle")
        ensure_original(ctx, dataclasses.replace(plan, fresh=False))  # alone if its file is gone
    else:
        ensure_original(ctx, plan)
        ensure_models(ctx, plan, ORIGINAL, oracle, "original oracle")
    # Reference seed 0 is trained alone: its wall time is the honest `retrain_seconds`.
    ensure_models(ctx, dataclasses.replace(plan, fused=1, workers=1), RETRAIN, [0],
                  "reference 0 (timed)")
    ensure_models(ctx, plan, RETRAIN, list(range(1, 2 * n)), "references + retrain oracle")
    paths = {
        "refs": [ctx.model_path(RETRAIN, s) for s in range(n)],
        "retrain": [ctx.model_path(RETRAIN, s) for s in range(n, 2 * n)],
        "original": [ctx.model_path(ORIGINAL, s) for s in range(1, n + 1)],
    }
    return {k: load_entries(v) for k, v in paths.items()}


# ---------------------------------------------------------------- evaluations


def local_eval(bench: Benchmark, method: str, overrides: dict | None, plan: Plan) -> EvalResult:
    """Evaluate ``method`` on ``bench`` (``summary['error']`` set if runs failed)."""
    started = time.time()
    check_plan(plan)
    cfg = check_request(bench, [method], overrides)[method]
    hp = cfg.to_dict()
    with one_pool(plan) as plan:
        ctx, sets = prepare_references(bench, plan)
        n = bench.num_models
        errors = ensure_runs(ctx, plan, method, cfg, list(range(n)))
        runs = None if errors else load_entries([ctx.run_path(method, hp, s) for s in range(n)])
        result = evaluate(ctx, sets, method, hp, runs, plan.workers)
        result.summary["errors"] = errors
        if errors:
            result.summary["error"] = (f"{method}: {len(errors)} of {n} runs failed; "
                                       f"first: {errors[0]}")
    result.summary["wall_seconds"] = time.time() - started
    return result


def evaluate_states(bench: Benchmark, states: list[dict], plan: Plan, label: str = "submission"
                    ) -> EvalResult:
    """Score given state_dicts (e.g. a submission's checkpoints) as the unlearned models.

    The references are the benchmark's (trained or read from the cache); N = the number
    of states. The states' outputs come first: a checkpoint whose outputs are NaN or
    infinite is refused, by its name, before any training.
    """
    import torch

    from ..models import build_model, load_state

    check_models(len(states), "the number of checkpoints")
    bench = dataclasses.replace(bench, num_models=len(states))
    with one_pool(plan) as plan:
        ctx = prepare_context(bench, plan)
        names = getattr(states, "members", None) or [f"checkpoint {i}" for i in range(len(states))]
        runs = []
        for i, state in enumerate(states):
            net = load_state(build_model(bench.model, ctx.source.num_classes), state,
                             source=names[i]).to(plan.device)
            with jobs.pinned_threads():  # the same outputs as a job's, whatever the machine
                runs.append(jobs.model_outputs(net, ctx, torch.device(plan.device),
                                               {"kind": label, "seed": i, "seconds": float("nan")},
                                               what=names[i]))
        sets = ensure_references(ctx, plan)
        return evaluate(ctx, sets, label, {}, runs, plan.workers)  # submissions: seconds NaN


def evaluate(ctx: Context, sets: dict, label: str, hp: dict, runs: list[Outputs] | None,
             workers: int = 1) -> EvalResult:
    """Both oracles and (when ``runs`` is given) the method, scored by the scoring core
    against the references, as an :class:`EvalResult` (the method's set keyed ``method``
    in ``summary['intervals']``)."""
    refs = References(ctx, sets["refs"])
    named = {RETRAIN_ORACLE: sets["retrain"], ORIGINAL_ORACLE: sets["original"]}
    if runs is not None:
        named[label] = runs
    scores = score_sets(refs, named, timed=[label], workers=workers)
    iv = dict(scores.intervals)
    summary = {
        "benchmark": ctx.bench.name,
        "benchmark_config": ctx.bench.to_dict(),
        "method": label,
        "hyperparameters": hp,
        "num_models": ctx.bench.num_models,
        "split": split_summary(ctx),
        "retrain_seconds": refs.retrain_seconds,
        "references": refs.accuracy,
        "oracles": {k: scores.scored[f"oracle_{k}"].to_json() for k in ("retrain", "original")},
    }
    result = EvalResult(summary, ctx.split, refs.confs, scores.scored[RETRAIN_ORACLE],
                        scores.scored[ORIGINAL_ORACLE])
    if runs is not None:
        iv["method"] = iv.pop(label)
        summary.update(method_numbers(scores, label))
        summary["timing"] = timing(sets["refs"][:1], runs)
        result.method = scores.scored[label]
    summary["intervals"] = {k: iv[k] for k in (RETRAIN_ORACLE, ORIGINAL_ORACLE, "method",
                                                "oracle_gap", "bootstrap") if k in iv}
    return result


def split_summary(ctx: Context) -> dict:
    """The split's scenario, kind and sizes, as every report names them."""
    return {"scenario": ctx.split.scenario, "kind": ctx.split.kind, **ctx.split.sizes()}


def method_numbers(scores: Scores, name: str) -> dict:
    """A method's flat numbers in ``report.json``: F, the ratios, score, accuracies, time."""
    s, ceiling = scores.scored[name], scores.scored[RETRAIN_ORACLE].score
    return {"forget_quality": s.forget_quality.score, **scores.refs.ratios(s), "score": s.score,
            "score_vs_retrain_oracle": s.score / ceiling if ceiling > 0 else float("nan"),
            "accuracy": {"retain": s.retain_acc, "test": s.test_acc, "forget": s.forget_acc},
            **scores.times[name]}
