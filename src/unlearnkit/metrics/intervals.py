"""95% intervals for the competition's scores, by a paired two-stage bootstrap.

A resample draws, independently and with replacement, the N reference models, the N
models of every scored set and the forget examples; the epsilons are recomputed on the
resampled models and the final score on the resampled accuracies. All sets share a
resample's references and examples, so differences and ratios between sets (a method
against the original oracle, a method as a fraction of the retrain oracle) get intervals
of their own. Seeded: a rerun prints the same intervals.

Two stages, for speed: one per-example epsilon costs about 3 ms whatever N (the
scorer's interval family is 400 x ~400 thresholds), so ``model_draws`` model resamples
each recompute every example's epsilon once, and each is paired with
``resamples / model_draws`` independent draws of the examples, which only re-average
those epsilons' points. 200 resamples over 25 model draws cost 25 x (sets) x S
epsilons: about 30 s of one core for three sets of S = 130 examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .competition import forget_quality, max_epsilon

RESAMPLES = 200
MODEL_DRAWS = 25
LEVEL = 0.95
MIN_MODELS = 4
"""The smallest N the bootstrap accepts: below it a model resample has at most 3 distinct
models, and the metric has at most 2 buckets (max_eps = ceil(ln(N - 1)))."""


@dataclass(frozen=True)
class ModelSet:
    """What the score of N models needs: confidences and per-model accuracies."""

    confs: np.ndarray  # [N, S] logit-scaled confidences on the forget examples
    retain_acc: np.ndarray  # [N]
    test_acc: np.ndarray  # [N]

    @property
    def num_models(self) -> int:
        return self.confs.shape[0]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval."""

    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high}

    def text(self, digits: int = 4) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class Draws:
    """Every resample's forget quality and score of one set: each [resamples]."""

    forget_quality: np.ndarray
    score: np.ndarray


def check_models(n: int, what: str = "N") -> None:
    """Refuse an N too small for the metric's buckets and the bootstrap."""
    if n < MIN_MODELS:
        raise ValueError(
            f"{what} = {n} models is too few: the metric's forget quality needs N >= "
            f"{MIN_MODELS} (with N models it has 2 * ceil(ln(N - 1)) buckets: "
            f"{2 * max_epsilon(max(n, 2)) if n > 1 else 0} at N = {n}) and the bootstrap "
            f"needs distinct models to resample; use --models {MIN_MODELS} or more "
            f"(16 or more to rank methods)"
        )


def _ratio(s: ModelSet, refs: ModelSet, models, ref_models) -> float:
    """(RA_U / RA_R) * (TA_U / TA_R) on one model resample."""
    return float(s.retain_acc[models].mean() / refs.retain_acc[ref_models].mean()
                 * s.test_acc[models].mean() / refs.test_acc[ref_models].mean())


def bootstrap(sets: dict[str, ModelSet], refs: ModelSet, *, resamples: int = RESAMPLES,
              model_draws: int = MODEL_DRAWS, seed: int = 0, workers: int = 1) -> dict[str, Draws]:
    """Every set's F and score on ``resamples`` paired resamples (see the module doc)."""
    if resamples < 10 or model_draws < 1 or resamples % model_draws:
        raise ValueError(f"resamples ({resamples}) must be >= 10 and a multiple of "
                         f"model_draws ({model_draws})")
    check_models(refs.num_models, "the number of reference models")
    n_ex = refs.confs.shape[1]
    for name, s in sets.items():
        check_models(s.num_models, f"N of {name!r}")
        if s.confs.shape[1] != n_ex:
            raise ValueError(f"{name!r} has {s.confs.shape[1]} forget examples, the "
                             f"references {n_ex}")
    rng = np.random.default_rng(seed)
    per = resamples // model_draws
    f_out = {name: np.empty(resamples) for name in sets}
    s_out = {name: np.empty(resamples) for name in sets}
    for d in range(model_draws):
        ref_models = rng.integers(0, refs.num_models, refs.num_models)
        examples = rng.integers(0, n_ex, (per, n_ex))  # [per, S] example draws
        for name, s in sets.items():
            models = rng.integers(0, s.num_models, s.num_models)
            fq = forget_quality(s.confs[models], refs.confs[ref_models], empty_eps=0.0,
                                workers=workers)
            f = fq.points[examples].mean(axis=1)  # [per]
            rows = slice(d * per, (d + 1) * per)
            f_out[name][rows] = f
            s_out[name][rows] = f * _ratio(s, refs, models, ref_models)
    return {name: Draws(f_out[name], s_out[name]) for name in sets}


def interval(value: float, draws: np.ndarray, level: float = LEVEL) -> Interval:
    """The percentile interval of ``draws`` around the point estimate ``value``."""
    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return Interval(float(value), float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(float(value), float(low), float(high))


def ratio_interval(value: float, num: np.ndarray, den: np.ndarray,
                   level: float = LEVEL) -> Interval:
    """The interval of num / den over paired resamples (resamples with den = 0 dropped)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return interval(value, np.where(den > 0, num / den, np.nan), level)
