"""A leaderboard: every method that serves a benchmark, at one N, against one reference set.

All rows (the methods and both oracles) are scored by the scoring core
(:mod:`unlearnkit.harness.scoring_core`) against the same N references, with 95% intervals from
one paired bootstrap, so their differences are comparable; a method's run time is the
mean of its runs timed alone, as in local-eval. Every check (method names, settings, scenario)
runs before the first training; a method whose runs fail becomes a failed row with its
error, and the others go on. Runs come from the cache when they are there.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from ..benchmarks import Benchmark, scenario_kind
from .pipeline import (
    Plan,
    ensure_runs,
    load_entries,
    one_pool,
    prepare_references,
    split_summary,
)
from .scoring_core import (
    ORIGINAL_ORACLE,
    RETRAIN_ORACLE,
    References,
    Scores,
    score_sets,
)


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
    minus_baseline: dict | None = None  # score minus the baseline method's, paired; "moved"
    error: str | None = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def plan_methods(bench: Benchmark, names: list[str] | None, overrides: dict[str, dict],
                 kind: str) -> dict:
    """``{method: resolved config}`` of the methods to rank: those asked for (all that
    serve ``kind`` when None), checked by :func:`unlearnkit.harness.pipeline.check_request`."""
    from ..methods import list_methods, serves
    from .pipeline import check_request

    unknown = sorted(set(overrides) - set(names or list_methods()))
    if unknown:
        raise ValueError(f"--set names method(s) {unknown} that are not on this leaderboard")
    chosen = names or [m for m in list_methods() if kind in serves(m)]
    if not chosen:
        raise ValueError(f"no registered method serves the {kind!r} scenario of {bench.name}")
    return check_request(bench, chosen, per_method=overrides)


def run_leaderboard(bench: Benchmark, plan: Plan, methods: list[str] | None = None,
                    overrides: dict[str, dict] | None = None, baseline: str | None = None) -> dict:
    """Run (or read from the cache) every method, score all rows, rank them; a dict.

    ``baseline``: one of the ranked methods; every other row then also gets its score
    minus the baseline's, with a paired interval (does it beat, say, fine-tuning?).
    """
    started = time.time()
    configs = plan_methods(bench, methods, overrides or {}, scenario_kind(bench.scenario))
    if baseline is not None and baseline not in configs:
        raise ValueError(f"--baseline {baseline!r} is not on this leaderboard (methods: "
                         f"{', '.join(configs)}); add it to --methods or pick one of those")
    with one_pool(plan) as plan:
        ctx, sets = prepare_references(bench, plan)
        n = bench.num_models
        runs, errors = {}, {}
        for name, cfg in configs.items():
            failed = ensure_runs(ctx, plan, name, cfg, list(range(n)))
            if failed:
                errors[name] = f"{len(failed)} of {n} runs failed; first: {failed[0]}"
            else:
                runs[name] = load_entries([ctx.run_path(name, cfg.to_dict(), s) for s in range(n)])
    refs = References(ctx, sets["refs"])
    scores = score_sets(refs, {RETRAIN_ORACLE: sets["retrain"],
                               ORIGINAL_ORACLE: sets["original"], **runs},
                        timed=list(runs), workers=plan.workers)
    return {
        "benchmark": bench.name,
        "num_models": n,
        "split": split_summary(ctx),
        "retrain_seconds": refs.retrain_seconds,
        "references": refs.accuracy,
        "oracle_gap": scores.intervals.get("oracle_gap"),
        "bootstrap": scores.intervals["bootstrap"],
        "rows": [r.to_json() for r in _rows(scores, configs, errors, baseline)],
        "baseline": baseline,
        "wall_seconds": time.time() - started,
    }


def _rows(scores: Scores, configs: dict, errors: dict[str, str],
          baseline: str | None = None) -> list[Row]:
    """Every scored set as a row, ranked by score, then the failed ones."""
    rows = []
    for name, s in scores.scored.items():
        i = scores.intervals[name]
        t = scores.times.get(name, {})
        rows.append(Row(name, configs[name].changed() if name in configs else {},
                        i["forget_quality"], i["score"], i.get("fraction_of_retrain_oracle"),
                        i.get("minus_original_oracle"), i.get("distinguishable_from_original"),
                        t.get("seconds_per_run"), t.get("time_fraction_of_retrain"),
                        accuracy={"retain": s.retain_acc, "test": s.test_acc,
                                  "forget": s.forget_acc},
                        minus_baseline=_versus(scores, name, baseline)))
    rows.sort(key=lambda r: -r.score["value"])
    return rows + [Row(name, configs[name].changed(), error=err) for name, err in errors.items()]


def _versus(scores: Scores, name: str, baseline: str | None) -> dict | None:
    """``name``'s score minus the baseline's (paired interval), when both were scored."""
    if baseline is None or name == baseline or baseline not in scores.scored:
        return None
    return scores.difference(name, baseline)
