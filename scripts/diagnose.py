"""Why a method scores what it scores: where its forget confidences sit against the retrains'.

The metric compares, per forget example, the N unlearned models' logit-scaled confidences
with the N references'. A method loses forget quality in two ways: its confidences sit
away from the references' (a *shift*: still memorised, or over-forgotten), or they are
too alike from run to run (a narrow *spread*: the range rule and the interval attacks
catch it). This script runs (or reads from the cache) the method exactly as `local-eval`
does and prints, per set of models (the method, both oracles), over the forget examples:

- shift: quartiles over examples of (mean U_i - mean R_i) / std R_i (0 for a retrain);
- spread: quartiles over examples of std U_i / std R_i (1 for a retrain);
- F, the score and the accuracies;
- the shifts split (:mod:`unlearnkit.metrics.shift_model`) into their common part (mean)
  and their per-example part (std, with N's sampling noise taken out), the correlation of
  the set's mean confidences with the references', and F under the Gaussian model as a
  fraction of the retrain's: as measured, with the common shift removed, and with the
  spread set to 1 as well (what no global fix can raise: the per-example part).

    python scripts/diagnose.py --bench cifar10-groups-cpu --models 32 --method retrain_head
    python scripts/diagnose.py --bench digits --method retrain_head_tuned --set keep=0.5
    python scripts/diagnose.py --bench cifar10-groups-resnet18 --method retrain_head_tuned,prune_reinit

On class removal it also prints where each set puts the forget examples' own class: its
logit, the logsumexp of the others, their difference (the confidence) and its spread.
"""

from __future__ import annotations

import numpy as np
from method_args import parse_method_args

from unlearnkit.harness.pipeline import check_request, load_entries, local_eval, prepare_references
from unlearnkit.metrics.competition import logit_scaled_confidence
from unlearnkit.metrics.shift_model import ceilings, shift_and_spread, summarise_shifts


def test_confs(entries, labels: np.ndarray) -> np.ndarray:
    """The models' logit-scaled confidences on the test set. # [N, T]"""
    return np.stack([logit_scaled_confidence(e.test_logits, labels) for e in entries])


def class_logit_parts(forget_logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Where a set of models puts the forget examples' own class (class removal), from
    their forget logits [N, S, K] and labels [S]: medians over the examples of the class's
    logit, the logsumexp of the other logits, the logit-scaled confidence (their
    difference) and its std across the N models."""
    z = forget_logits.astype(np.float64)
    own = z[:, np.arange(z.shape[1]), labels]  # [N, S]
    conf = np.stack([logit_scaled_confidence(m, labels) for m in z])  # [N, S]
    others = own - conf  # the confidence is the own logit minus the others' logsumexp
    return {"own logit": float(np.median(own)), "others (logsumexp)": float(np.median(others)),
            "confidence": float(np.median(conf)),
            "std across models": float(np.median(conf.std(axis=0)))}


def describe(name: str, scored, refs: np.ndarray, test: np.ndarray, ref_test: np.ndarray
             ) -> str:
    """One line: shift and spread quartiles, F, score and accuracies of one model set."""
    shift, spread = shift_and_spread(scored.confs, refs)
    test_shift = np.median(shift_and_spread(test, ref_test)[0])
    q = lambda a: "/".join(f"{v:+.2f}" for v in np.percentile(a, [25, 50, 75]))  # noqa: E731
    return (f"{name:18s} shift {q(shift):>17s} (test {test_shift:+.2f})  spread "
            f"{q(spread):>17s}  "
            f"F {scored.forget_quality.score:.4f}  score {scored.score:.4f}  "
            f"retain {scored.retain_acc:.3f} test {scored.test_acc:.3f} "
            f"forget {scored.forget_acc:.3f}")


def decompose(u: np.ndarray, r: np.ndarray) -> str:
    """One line: the shifts' common and per-example parts, the correlation, and the
    Gaussian model's F (fractions of its retrain) as measured and with the fixes."""
    s, c = summarise_shifts(u, r), ceilings(u, r)
    return (f"{'':18s} shift common {s.mean_shift:+.2f}, per example {s.true_example_sd:.2f} "
            f"(measured {s.example_sd:.2f}, noise {s.noise_sd:.2f}), correlation "
            f"{s.correlation:+.2f}; Gaussian F / retrain: {c.as_measured:.2f}, common shift "
            f"removed {c.common_removed:.2f}, and spread 1 {c.spread_one:.2f}")


def main() -> None:
    bench, methods, overrides, plan = parse_method_args(__doc__.splitlines()[0])
    ctx, sets = prepare_references(bench, plan)  # trained once, read by every method
    tests = {k: test_confs(v, ctx.parts["test"].labels) for k, v in sets.items()}
    for i, method in enumerate(methods.split(",")):
        diagnose(bench, method.strip(), overrides, plan, ctx, sets, tests, oracles=i == 0)


def diagnose(bench, method: str, overrides: dict, plan, ctx, sets: dict, tests: dict,
             oracles: bool = True) -> None:
    """Run (or read) one method's N runs and print its lines (the oracles' too if asked),
    beside the references' outputs ``sets`` and test confidences ``tests``."""
    result = local_eval(bench, method, overrides, plan)
    if result.method is None:
        raise SystemExit(result.summary.get("error", "the method's runs failed"))
    hp = check_request(bench, [method], overrides)[method].to_dict()
    sets = {**sets, "method": load_entries([ctx.run_path(method, hp, s)
                                            for s in range(bench.num_models)])}
    labels = ctx.parts["test"].labels
    tests = {**tests, "method": test_confs(sets["method"], labels)}
    print(f"{bench.name}, N = {bench.num_models}, quartiles over the forget examples "
          f"(25/50/75%), {method} {overrides or ''}")
    rows = (("oracle_retrain", "retrain", result.oracle_retrain),
            ("oracle_original", "original", result.oracle_original))
    for name, key, scored in (*(rows if oracles else ()), (method, "method", result.method)):
        print(describe(name, scored, result.ref_confs, tests[key], tests["refs"]))
        print(decompose(scored.confs, result.ref_confs))
    if bench.scenario.startswith("class"):
        forget_labels = np.asarray(ctx.parts["forget"].labels)
        print("class removal: where each set puts the forget examples' own class (medians "
              "over the forget examples)")
        removed = np.unique(forget_labels)
        elsewhere = ~np.isin(np.asarray(labels), removed)  # test images of the kept classes
        for name, key in (("references", "refs"), ("oracle_retrain", "retrain"),
                          ("oracle_original", "original"), (method, "method")):
            logits = np.stack([e.forget_logits for e in sets[key]])
            parts = class_logit_parts(logits, forget_labels)
            test = np.stack([e.test_logits for e in sets[key]])[:, elsewhere][..., removed]
            parts["its logit on the kept classes' test images"] = float(np.median(test))
            print(f"{name:18s} " + "  ".join(f"{k} {v:+.2f}" for k, v in parts.items()))
    s = result.summary
    print(f"{s['seconds_per_run']:.2f} s per run, {s['time_fraction_of_retrain']:.1%} of a "
          f"retrain ({s['retrain_seconds']:.1f} s); score / retrain oracle "
          f"{s['score_vs_retrain_oracle']:.2f}")


if __name__ == "__main__":
    main()
