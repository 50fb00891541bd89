"""A method's score on held-out references: the check that a setting chosen by looking
at one set of references is not a lucky draw.

`local-eval` and the leaderboard score runs 0..N-1 against references 0..N-1 (with
retrains N..2N-1 as the retrain oracle). Settings picked from a grid on those numbers are
biased upwards. This script swaps the roles, as `unlearnkit tune` does for its best trial:
retrains N..2N-1 become the references, references 0..N-1 the retrain oracle, and the
method runs with fresh seeds N..2N-1; nothing new is trained but those N runs.

    python scripts/held_out.py --bench cifar10-groups-cpu --models 32 --method retrain_head_tuned
"""

from __future__ import annotations

import argparse
import os

from unlearnkit.assignments import parse_assignments
from unlearnkit.benchmarks import load_benchmark
from unlearnkit.pipeline import Plan, check_request, prepare_references
from unlearnkit.tune import paired_scores, runs_of


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", default="digits")
    p.add_argument("--method", required=True)
    p.add_argument("--models", type=int, help="N models per side (override)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a hyperparameter")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--data", default=os.environ.get("UNLEARNKIT_DATA"))
    p.add_argument("--cache", default=None)
    args = p.parse_args()
    bench = load_benchmark(args.bench, num_models=args.models)
    plan = Plan(workers=args.workers, cache_dir=args.cache, data_root=args.data, progress=False)
    cfg = check_request(bench, [args.method], parse_assignments(args.set))[args.method]
    ctx, sets = prepare_references(bench, plan)
    n = bench.num_models
    for label, refs, oracle, seeds in (
            ("as scored (references 0..N-1, runs 0..N-1)", sets["refs"], sets["retrain"],
             list(range(n))),
            ("held out (references N..2N-1, runs N..2N-1)", sets["retrain"], sets["refs"],
             list(range(n, 2 * n)))):
        # paired_scores compares "tuned" with "defaults": here the method with doing nothing
        named = {"tuned": runs_of(ctx, plan, args.method, cfg, seeds),
                 "defaults": sets["original"], "oracle_retrain": oracle}
        scores = paired_scores(ctx, refs, named, args.workers)
        print(f"{bench.name}, N = {n}, {label}:")
        for key, name in (("tuned", args.method), ("oracle_retrain", "oracle_retrain"),
                          ("defaults", "oracle_original")):
            s = scores[key]["score"]
            print(f"  {name:24s} score {s['value']:.4f} [{s['low']:.4f}, {s['high']:.4f}]")
        d = scores["tuned_minus_defaults"]
        print(f"  {args.method} - oracle_original: {d['value']:+.4f} [{d['low']:+.4f}, "
              f"{d['high']:+.4f}]; / retrain oracle: "
              f"{scores['tuned']['score']['value'] / scores['oracle_retrain']['score']['value']:.2f}")


if __name__ == "__main__":
    main()
