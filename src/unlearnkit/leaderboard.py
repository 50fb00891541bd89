"""A leaderboard: every method that serves a benchmark, at one N, against one reference set.

All rows (the methods and both oracles) are scored against the same N references and
get their 95% intervals from one paired bootstrap (:mod:`unlearnkit.metrics.intervals`),
so their differences are comparable. Every check (method names, settings, scenario)
runs before the first training; a method whose runs fail becomes a failed row with its
error, and the others go on. Runs come from the cache when they are there.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from .benchmarks import Benchmark
from .data.splits import parse_scenario
from .metrics import intervals
from .metrics.model_sets import model_set, score_against
from .pipeline import TIME_RULE, Plan, ensure_runs, load_entries, prepare_references, score_oracles


@dataclass
class Row:
    """One line of the leaderboard: a method's (or an oracle's) numbers."""

    name: str
    settings: dict = field(default_factory=dict)  # the fields that differ from the defaults
    forget_quality: dict | None = None  # {value, low, high}
    score: dict | None = None
    fraction_of_retrain_oracle: dict | None = None
    minus_original_oracle: dict | None = None
    distinguishable_from_original: bool | None = None
    seconds_per_run: float | None = None
    time_fraction_of_retrain: float | None = None
    accuracy: dict | None = None  # retain, test, forget
    error: str | None = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def scenario_kind(bench: Benchmark) -> str | None:
    """'class' or 'sample' from the scenario text (None for 'given': read from the data)."""
    kind, _ = parse_scenario(bench.scenario)
    return None if kind == "given" else ("class" if kind == "class" else "sample")


def plan_methods(bench: Benchmark, names: list[str] | None, overrides: dict[str, dict],
                 kind: str) -> dict:
    """``{method: resolved config}`` of the methods to rank: those asked for (all that
    serve ``kind`` when None), checked by :func:`unlearnkit.pipeline.check_request`."""
    from .methods import list_methods, serves
    from .pipeline import check_request

    unknown = sorted(set(overrides) - set(names or list_methods()))
    if unknown:
        raise ValueError(f"--set names method(s) {unknown} that are not on this leaderboard")
    chosen = names or [m for m in list_methods() if kind in serves(m)]
    if not chosen:
        raise ValueError(f"no registered method serves the {kind!r} scenario of {bench.name}")
    return check_request(bench, chosen, per_method=overrides)


def run_leaderboard(bench: Benchmark, plan: Plan, methods: list[str] | None = None,
                    overrides: dict[str, dict] | None = None) -> dict:
    """Run (or read from the cache) every method, score all rows, rank them; a dict."""
    started = time.time()
    kind = scenario_kind(bench)
    configs = plan_methods(bench, methods, overrides or {}, kind) if kind else None
    ctx, sets = prepare_references(bench, plan)
    if configs is None:  # a 'given' split: its kind is known once it is read
        configs = plan_methods(bench, methods, overrides or {}, ctx.split.kind)
    base = score_oracles(ctx, sets, "leaderboard", {})
    n = bench.num_models
    runs, errors = {}, {}
    for name, cfg in configs.items():
        failed = ensure_runs(ctx, plan, name, cfg, list(range(n)))
        if failed:
            errors[name] = f"{len(failed)} of {n} runs failed; first: {failed[0]}"
        else:
            runs[name] = load_entries([ctx.run_path(name, cfg.to_dict(), s) for s in range(n)])
    scored = {name: score_against(entries, sets["refs"], ctx, base.ref_confs)
              for name, entries in runs.items()}
    table = _rows(base, ctx, sets, configs, runs, scored, errors, plan.workers)
    return {
        "benchmark": bench.name,
        "num_models": n,
        "split": base.summary["split"],
        "retrain_seconds": base.summary["retrain_seconds"],
        "references": base.summary["references"],
        "oracle_gap": table.pop("oracle_gap"),
        "bootstrap": table.pop("bootstrap"),
        "rows": [r.to_json() for r in table["rows"]],
        "wall_seconds": time.time() - started,
    }


def _rows(base, ctx, sets, configs, runs, scored, errors, workers) -> dict:
    """Every row with its intervals from one paired bootstrap, ranked by score."""
    all_scored = {intervals.RETRAIN_ORACLE: (sets["retrain"], base.oracle_retrain),
                  intervals.ORIGINAL_ORACLE: (sets["original"], base.oracle_original),
                  **{name: (runs[name], s) for name, s in scored.items()}}
    iv = intervals.summarise(
        {k: model_set(e, ctx, s.confs) for k, (e, s) in all_scored.items()},
        model_set(sets["refs"], ctx, base.ref_confs),
        {k: (s.forget_quality.score, s.score) for k, (_, s) in all_scored.items()},
        workers=workers)
    retrain_s = base.summary["retrain_seconds"]
    rows = []
    for name, (entries, s) in all_scored.items():
        i = iv[name]
        row = Row(name, configs[name].changed() if name in configs else {},
                  i["forget_quality"], i["score"], i.get("fraction_of_retrain_oracle"),
                  i.get("minus_original_oracle"), i.get("distinguishable_from_original"),
                  accuracy={"retain": s.retain_acc, "test": s.test_acc, "forget": s.forget_acc})
        if name in configs:
            per_run = sum(e.meta.get("seconds", float("nan")) for e in entries) / len(entries)
            row.seconds_per_run, row.time_fraction_of_retrain = per_run, per_run / retrain_s
        rows.append(row)
    rows.sort(key=lambda r: -r.score["value"])
    rows += [Row(name, configs[name].changed(), error=err) for name, err in errors.items()]
    return {"rows": rows, "oracle_gap": iv.get("oracle_gap"), "bootstrap": iv["bootstrap"]}


def over_time_rule(row: dict) -> bool:
    """True when a method's mean run costs more than 20% of one retrain."""
    frac = row.get("time_fraction_of_retrain")
    return frac is not None and frac > TIME_RULE
