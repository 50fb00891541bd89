"""How well a benchmark discriminates: the oracle gap in half-widths of its interval, per N.

For each N it trains (or reads from the cache) the benchmark's original, N references
and both oracle sets, scores the two oracles against the references with the paired
bootstrap, and prints the retrain oracle's score minus the original oracle's, that
gap's 95% interval, the gap in half-widths (>= 3: the benchmark tells forgetting from
not forgetting at that N) and the wall time of the step (cached models cost nothing,
so run the N in increasing order: each reuses the smaller one's models).

It also splits the gap's bootstrap variance into the part from drawing the forget
examples and the part from drawing the models (the bootstrap draws both in two
stages), and projects the half-widths at twice the forget examples from that split: the
examples' part shrinks as 1/|S|, the models' part stays. A projection, not a
measurement: it assumes the gap itself stays as it is.

    python scripts/bench_gap.py --bench digits --models 8,16,32 --workers 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np

from unlearnkit.benchmarks import load_benchmark
from unlearnkit.harness.pipeline import Plan, prepare_references
from unlearnkit.harness.scoring_core import ORIGINAL_ORACLE, RETRAIN_ORACLE, References, score_sets


def gap_at(bench, n: int, plan: Plan) -> dict:
    """The oracle gap of ``bench`` at N = ``n`` (trains what is missing)."""
    start = time.time()
    bench = dataclasses.replace(bench, num_models=n)
    ctx, sets = prepare_references(bench, plan)
    scores = score_sets(References(ctx, sets["refs"]), {RETRAIN_ORACLE: sets["retrain"],
                                                         ORIGINAL_ORACLE: sets["original"]},
                        workers=plan.workers)
    iv = scores.intervals
    gap_draws = scores.draws[RETRAIN_ORACLE].score - scores.draws[ORIGINAL_ORACLE].score
    share = examples_share(gap_draws, iv["bootstrap"]["model_draws"])
    return {"bench": bench.name, "N": n, "forget": len(ctx.split.forget),
            "retrain": iv["oracle_retrain"]["score"], "original": iv["oracle_original"]["score"],
            "gap": iv["oracle_gap"], "examples_share": share,
            "projected_at_2x_forget": iv["oracle_gap"]["in_half_widths"]
            / np.sqrt(1 - share / 2),
            "seconds": time.time() - start, "load": os.getloadavg()[0]}


def examples_share(draws: np.ndarray, model_draws: int) -> float:
    """The share of the draws' variance that comes from drawing the forget examples: the
    mean variance within a model draw (its resamples share the models and differ only in
    the examples) over the total variance."""
    groups = draws.reshape(model_draws, -1)  # rows: one model draw, its example draws
    total = draws.var(ddof=1)
    return float(groups.var(axis=1, ddof=1).mean() / total) if total > 0 else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", default="digits")
    p.add_argument("--models", default="8,16,32", help="comma-separated N, increasing")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cache", default=None)
    p.add_argument("--data", default=None)
    p.add_argument("--json", help="also append one JSON line per N to this file")
    args = p.parse_args()
    plan = Plan(workers=args.workers, cache_dir=args.cache, data_root=args.data, progress=False)
    bench = load_benchmark(args.bench)
    print("bench  N  |S|  retrain score  original score  gap [95%]  gap/half-width  "
          "examples' share  projected at 2|S|  s  load")
    for n in (int(x) for x in args.models.split(",")):
        r = gap_at(bench, n, plan)
        g = r["gap"]
        print(f"{r['bench']}  {n}  {r['forget']}  {r['retrain']['value']:.4f}  "
              f"{r['original']['value']:.4f}  {g['value']:.4f} [{g['low']:.4f}, {g['high']:.4f}]"
              f"  {g['in_half_widths']:.2f}  {r['examples_share']:.2f}  "
              f"{r['projected_at_2x_forget']:.2f}  {r['seconds']:.0f}  {r['load']:.1f}", flush=True)
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
