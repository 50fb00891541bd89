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

from method_args import parse_method_args

from unlearnkit.harness.pipeline import check_request, prepare_references
from unlearnkit.harness.scoring_core import ORIGINAL_ORACLE, RETRAIN_ORACLE, References, score_sets
from unlearnkit.harness.tune import runs_of


def main() -> None:
    bench, method, overrides, plan = parse_method_args(__doc__.splitlines()[0])
    cfg = check_request(bench, [method], overrides)[method]
    ctx, sets = prepare_references(bench, plan)
    n = bench.num_models
    retrain_seconds = References(ctx, sets["refs"]).retrain_seconds  # reference 0, alone
    for label, refs, oracle, seeds in (
            ("as scored (references 0..N-1, runs 0..N-1)", sets["refs"], sets["retrain"],
             list(range(n))),
            ("held out (references N..2N-1, runs N..2N-1)", sets["retrain"], sets["refs"],
             list(range(n, 2 * n)))):
        named = {method: runs_of(ctx, plan, method, cfg, seeds), RETRAIN_ORACLE: oracle,
                 ORIGINAL_ORACLE: sets["original"]}
        scores = score_sets(References(ctx, refs, retrain_seconds), named, timed=[method],
                            workers=plan.workers)
        print(f"{bench.name}, N = {n}, {label}:")
        for name in named:
            s = scores.intervals[name]["score"]
            print(f"  {name:24s} score {s['value']:.4f} [{s['low']:.4f}, {s['high']:.4f}]")
        row = scores.intervals[method]
        d, f = row["minus_original_oracle"], row["fraction_of_retrain_oracle"]
        print(f"  {method} - oracle_original: {d['value']:+.4f} [{d['low']:+.4f}, "
              f"{d['high']:+.4f}]; / retrain oracle: {f['value']:.2f} [{f['low']:.2f}, "
              f"{f['high']:.2f}]; {100 * scores.times[method]['time_fraction_of_retrain']:.1f}%"
              " of a retrain")


if __name__ == "__main__":
    main()
