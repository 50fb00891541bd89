"""How well a benchmark discriminates: the oracle gap in half-widths of its interval, per N.

For each N it trains (or reads from the cache) the benchmark's original, N references
and both oracle sets, scores the two oracles against the references with the paired
bootstrap, and prints the retrain oracle's score minus the original oracle's, that
gap's 95% interval, the gap in half-widths (>= 3: the benchmark tells forgetting from
not forgetting at that N) and the wall time of the step (cached models cost nothing,
so run the N in increasing order: each reuses the smaller one's models).

    python scripts/bench_gap.py --bench digits --models 8,16,32 --workers 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

from unlearnkit.benchmarks import load_benchmark
from unlearnkit.harness.pipeline import Plan, prepare_references
from unlearnkit.harness.scoring_core import ORIGINAL_ORACLE, RETRAIN_ORACLE, References, score_sets


def gap_at(bench, n: int, plan: Plan) -> dict:
    """The oracle gap of ``bench`` at N = ``n`` (trains what is missing)."""
    start = time.time()
    bench = dataclasses.replace(bench, num_models=n)
    ctx, sets = prepare_references(bench, plan)
    iv = score_sets(References(ctx, sets["refs"]), {RETRAIN_ORACLE: sets["retrain"],
                                                     ORIGINAL_ORACLE: sets["original"]},
                    workers=plan.workers).intervals
    return {"bench": bench.name, "N": n, "forget": len(ctx.split.forget),
            "retrain": iv["oracle_retrain"]["score"], "original": iv["oracle_original"]["score"],
            "gap": iv["oracle_gap"], "seconds": time.time() - start,
            "load": os.getloadavg()[0]}


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
    print("bench  N  |S|  retrain score  original score  gap [95%]  gap/half-width  s  load")
    for n in (int(x) for x in args.models.split(",")):
        r = gap_at(bench, n, plan)
        g = r["gap"]
        print(f"{r['bench']}  {n}  {r['forget']}  {r['retrain']['value']:.4f}  "
              f"{r['original']['value']:.4f}  {g['value']:.4f} [{g['low']:.4f}, {g['high']:.4f}]"
              f"  {g['in_half_widths']:.2f}  {r['seconds']:.0f}  {r['load']:.1f}", flush=True)
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
