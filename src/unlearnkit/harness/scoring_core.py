"""The scoring core: named sets of models against one set of references -> every score.

Every command that scores (local-eval, leaderboard, tune, score-submission, the held-out
re-score) makes sure its models exist, then hands the cached outputs here as named sets
(a method's runs, the two oracles, a submission's checkpoints) and renders what comes
back. One place therefore answers, for every set: the exact F, score and accuracies; a
95% interval of each from one paired bootstrap (:mod:`unlearnkit.metrics.intervals`); the
fraction of the retrain oracle and whether it is distinguishable from the original
oracle; and, for the sets that are timed, the time rule read from runs *timed alone*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..metrics import intervals
from ..metrics.competition import TIME_RULE
from ..metrics.intervals import MIN_MODELS, ORIGINAL_ORACLE, RETRAIN_ORACLE, check_models
from ..metrics.model_sets import Outputs, Scored, accuracies, confidences, model_set, score_against

if TYPE_CHECKING:
    from .context import Context

__all__ = ["MIN_MODELS", "ORIGINAL_ORACLE", "RETRAIN_ORACLE", "TIME_RULE", "References",
           "Scores", "check_models", "score_sets", "seconds_per_run", "time_rule", "timing"]

# ---------------------------------------------------------------- the time rule


def timed_alone(entry: Outputs | None) -> bool:
    """Whether the entry's run ran with no other job of its command at once."""
    return entry is not None and entry.meta.get("concurrent", 1) == 1


def seconds_per_run(entries: list[Outputs]) -> float:
    """Mean wall time of the entries timed alone (of all of them when none was): the one
    definition of a run's time in the kit."""
    alone = [e for e in entries if timed_alone(e)] or entries
    return float(np.mean([e.meta.get("seconds", np.nan) for e in alone]))


def time_rule(entries: list[Outputs], retrain_seconds: float) -> dict:
    """A set's run time, as a fraction of one retrain, against the 20% rule."""
    per_run = seconds_per_run(entries)
    return {"seconds_per_run": per_run, "time_fraction_of_retrain": per_run / retrain_seconds,
            "over_time_rule": bool(per_run > TIME_RULE * retrain_seconds)}


def timing(retrains: list[Outputs], runs: list[Outputs]) -> dict:
    """How ``retrain_seconds`` and ``seconds_per_run`` were measured (``summary['timing']``)."""
    alone = [e for e in runs if timed_alone(e)]
    threads = sorted({e.meta.get("threads") for e in retrains + runs} - {None})
    return {
        "measured": "alone" if alone and all(timed_alone(e) for e in retrains) else "under load",
        "how": "wall time of runs timed alone (no other job of this command running at "
               "once), every job with the same number of torch threads; seconds_per_run is "
               "the mean of the method runs timed alone, retrain_seconds reference 0's",
        "method_runs_timed": len(alone) or len(runs),
        "method_runs": len(runs),
        "retrain_runs_timed": len(retrains),
        "threads_per_job": threads[0] if len(threads) == 1 else threads,
    }


# ---------------------------------------------------------------- the references


class References:
    """The N models every set is scored against, read once: their confidences on forget,
    their accuracies and one retrain's time: ``retrain_seconds``, else the first entry's
    (reference 0, trained alone by the pipeline)."""

    def __init__(self, ctx: Context, entries: list[Outputs],
                 retrain_seconds: float | None = None):
        check_models(len(entries), "the number of reference models")
        self.ctx, self.entries = ctx, entries
        self.confs = confidences(entries, ctx.parts["forget"].labels.numpy())  # [N, S]
        self.retrain_seconds = (seconds_per_run(entries[:1]) if retrain_seconds is None
                                else retrain_seconds)
        self.accuracy = {k: float(v.mean()) for k, v in accuracies(entries, ctx).items()}

    def point(self, entries: list[Outputs]) -> Scored:
        """The exact score of one set (no interval): what a tune trial needs."""
        return score_against(entries, self.entries, self.ctx, self.confs)

    def ratios(self, s: Scored) -> dict:
        """The set's retain and test accuracy as fractions of the references'."""
        return {"retain_acc_ratio": s.retain_acc / self.accuracy["retain"],
                "test_acc_ratio": s.test_acc / self.accuracy["test"]}


# ---------------------------------------------------------------- scoring named sets


@dataclass
class Scores:
    """What :func:`score_sets` found: the exact scores, the intervals, the time rule."""

    refs: References
    scored: dict[str, Scored]  # every set's exact numbers (and its confidences)
    intervals: dict  # per set: F, score and the oracle comparisons; oracle_gap; bootstrap
    times: dict[str, dict] = field(default_factory=dict)  # the timed sets' time rule
    draws: dict[str, intervals.Draws] = field(default_factory=dict, repr=False)

    def row(self, name: str) -> dict:
        """One set's numbers, JSON-ready: exact values, ratios, intervals, time rule."""
        s = self.scored[name]
        return {**s.to_json(), **self.refs.ratios(s), "intervals": self.intervals[name],
                **self.times.get(name, {})}

    def difference(self, a: str, b: str) -> dict:
        """Set ``a``'s score minus set ``b``'s, with its paired interval; ``moved``: the
        interval excludes 0."""
        diff = intervals.interval(self.scored[a].score - self.scored[b].score,
                                  self.draws[a].score - self.draws[b].score)
        return {**diff.to_dict(), "moved": not diff.contains(0.0)}


def score_sets(refs: References, sets: dict[str, list[Outputs]], *, timed=(),
               workers: int = 1, resamples: int | None = None, model_draws: int | None = None,
               seed: int = 0) -> Scores:
    """Score every named set against ``refs`` with 95% intervals from one paired
    bootstrap (``resamples`` over ``model_draws``: the bootstrap's defaults, read at call
    time); the sets named in ``timed`` also get the time rule. A set named
    ``oracle_retrain`` / ``oracle_original`` is the ceiling / floor the others are
    compared with."""
    resamples = resamples or intervals.RESAMPLES
    model_draws = model_draws or intervals.MODEL_DRAWS
    for name, entries in sets.items():
        check_models(len(entries), f"N of {name!r}")
    scored = {name: refs.point(entries) for name, entries in sets.items()}
    draws = intervals.bootstrap(
        {k: model_set(sets[k], refs.ctx, s.confs) for k, s in scored.items()},
        model_set(refs.entries, refs.ctx, refs.confs),
        resamples=resamples, model_draws=model_draws, seed=seed, workers=workers)
    points = {k: (s.forget_quality.score, s.score) for k, s in scored.items()}
    how = {"resamples": resamples, "model_draws": model_draws, "seed": seed,
           "level": intervals.LEVEL}
    times = {k: time_rule(sets[k], refs.retrain_seconds) for k in timed if k in sets}
    return Scores(refs, scored, intervals.describe(draws, points, how), times, draws)
