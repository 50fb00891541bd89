"""Score cached model outputs with the competition metric, and assemble a report.

:func:`local_eval` is the whole ``unlearnkit local-eval``: it makes sure every model
exists (:mod:`unlearnkit.harness`), scores the method and both oracles against one set
of references, and returns the report dict that :mod:`unlearnkit.report` writes out.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from . import harness
from .benchmarks import Benchmark
from .cache import Outputs
from .harness import ORIGINAL, ORIGINAL_SEED, RETRAIN, Context, Plan
from .metrics.model_sets import accuracies, confidences, score_against

TIME_RULE = 0.2  # the competition's intent: an unlearning run costs <= 20% of a retrain


def _seconds(entries: list[Outputs]) -> float:
    return float(np.mean([e.meta.get("seconds", np.nan) for e in entries]))


def prepare_references(bench: Benchmark, plan: Plan) -> tuple[Context, dict]:
    """Train whatever is missing of: the original, the references and both oracles."""
    ctx = harness.prepare(bench, plan.cache_dir, plan.data_root, plan.progress)
    n = bench.num_models
    if n < 2:
        raise ValueError(f"num_models must be >= 2 (the metric compares N models), got {n}")
    oracle = list(range(1, n + 1))  # the original oracle: seeds 1..N of kind original
    if plan.fused > 1:  # the original (seed 0) trains fused with its oracle
        harness.ensure_models(ctx, plan, ORIGINAL, [ORIGINAL_SEED] + oracle,
                              "original + original oracle")
        harness.ensure_original(ctx, dataclasses.replace(plan, fresh=False))  # alone if its file is gone
    else:
        harness.ensure_original(ctx, plan)
        harness.ensure_models(ctx, plan, ORIGINAL, oracle, "original oracle")
    # Reference seed 0 is trained alone: its wall time is the honest `retrain_seconds`.
    harness.ensure_models(ctx, dataclasses.replace(plan, fused=1, workers=1), RETRAIN, [0],
                          "reference 0 (timed)")
    harness.ensure_models(ctx, plan, RETRAIN, list(range(1, 2 * n)), "references + retrain oracle")
    paths = {
        "refs": [ctx.model_path(RETRAIN, s) for s in range(n)],
        "retrain": [ctx.model_path(RETRAIN, s) for s in range(n, 2 * n)],
        "original": [ctx.model_path(ORIGINAL, s) for s in range(1, n + 1)],
    }
    return ctx, {k: harness.load_entries(v) for k, v in paths.items()}


def local_eval(bench: Benchmark, method: str, overrides: dict | None, plan: Plan) -> dict:
    """Evaluate ``method`` on ``bench``; the report dict (``error`` set if runs failed)."""
    from .methods import resolve_hyperparameters

    started = time.time()
    hp = resolve_hyperparameters(method, {**bench.method_overrides.get(method, {}),
                                          **(overrides or {})})
    ctx, sets = prepare_references(bench, plan)
    n = bench.num_models
    errors = harness.ensure_runs(ctx, plan, method, hp, list(range(n)))
    report = base_report(ctx, sets, method, hp)
    report["errors"] = errors
    if errors:
        report["error"] = f"{len(errors)} of {n} runs failed; first: {errors[0]}"
    else:
        runs = harness.load_entries([ctx.run_path(method, hp, s) for s in range(n)])
        add_method(report, ctx, sets, runs)
    report["wall_seconds"] = time.time() - started
    return report


def base_report(ctx: Context, sets: dict, method: str, hp: dict) -> dict:
    """Benchmark facts and both oracles, scored against the references."""
    y = ctx.parts["forget"].labels.numpy()
    ref_confs = confidences(sets["refs"], y)
    oracles = {name: score_against(sets[name], sets["refs"], ctx, ref_confs)
               for name in ("retrain", "original")}
    refs_acc = accuracies(sets["refs"], ctx)
    return {
        "benchmark": ctx.bench.name,
        "benchmark_config": ctx.bench.to_dict(),
        "method": method,
        "hyperparameters": hp,
        "num_models": ctx.bench.num_models,
        "split": {"scenario": ctx.split.scenario, "kind": ctx.split.kind, **ctx.split.sizes()},
        "retrain_seconds": _seconds(sets["refs"][:1]),
        "references": {k: float(v.mean()) for k, v in refs_acc.items()},
        "oracles": {k: v.to_json() for k, v in oracles.items()},
        "_scored": {"oracle_retrain": oracles["retrain"], "oracle_original": oracles["original"],
                    "ref_confs": ref_confs},
        "_split": ctx.split,
    }


def add_method(report: dict, ctx: Context, sets: dict, runs: list[Outputs]) -> None:
    """Score the method's runs and add its numbers (and the time rule) to ``report``."""
    s = score_against(runs, sets["refs"], ctx, report["_scored"]["ref_confs"])
    refs = report["references"]
    per_run = _seconds(runs)
    ceiling = report["oracles"]["retrain"]["score"]
    report.update(
        forget_quality=s.forget_quality.score,
        retain_acc_ratio=s.retain_acc / refs["retain"],
        test_acc_ratio=s.test_acc / refs["test"],
        score=s.score,
        score_vs_retrain_oracle=s.score / ceiling if ceiling > 0 else float("nan"),
        accuracy={"retain": s.retain_acc, "test": s.test_acc, "forget": s.forget_acc},
        seconds_per_run=per_run,
        time_fraction_of_retrain=per_run / report["retrain_seconds"],
        over_time_rule=bool(per_run > TIME_RULE * report["retrain_seconds"]),
    )
    report["_scored"]["method"] = s


def evaluate_states(bench: Benchmark, states: list[dict], plan: Plan, label: str = "submission"
                    ) -> dict:
    """Score given state_dicts (e.g. a submission's checkpoints) as the unlearned models.

    The references are the benchmark's (trained or read from the cache); N = the number
    of states.
    """
    import torch

    from .models import build_model, load_state

    if len(states) < 2:
        raise ValueError(f"need at least 2 checkpoints to score, got {len(states)}")
    bench = dataclasses.replace(bench, num_models=len(states))
    ctx, sets = prepare_references(bench, plan)
    runs = []
    for i, state in enumerate(states):
        net = load_state(build_model(bench.model, ctx.source.num_classes), state,
                         source=f"checkpoint {i}").to(plan.device)
        runs.append(harness.model_outputs(net, ctx, torch.device(plan.device),
                                          {"kind": label, "seed": i}))
    report = base_report(ctx, sets, label, {})
    add_method(report, ctx, sets, [_with_seconds(r) for r in runs])
    return report


def _with_seconds(entry: Outputs) -> Outputs:
    """Submissions carry no run time: mark it unknown."""
    entry.meta.setdefault("seconds", float("nan"))
    return entry
