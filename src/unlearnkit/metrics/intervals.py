"""95% intervals for the competition's scores, by a paired two-stage bootstrap.

A resample draws, independently and with replacement, the N reference models, the N
models of every scored set and the forget examples; the epsilons are recomputed on the
resampled models and the final score on the resampled accuracies. All sets share a
resample's references and examples, so differences and ratios between sets (a method
against the original oracle, a method as a fraction of the retrain oracle) get intervals
of their own. Each interval is the exact value +- 1.96 bootstrap standard errors (see
:func:`interval` for why not percentiles). Seeded: a rerun prints the same intervals.

Random streams: the references' and the examples' draws come from one stream seeded by
``seed`` alone; each set's model draws come from a stream of its own, keyed by ``seed``
and a stable hash of the set's name (:func:`set_stream`). So a set's interval depends on
its name, its models and the references, never on which other sets are scored beside it
(the pairing holds: every set of a resample shares its references and examples).

Two stages, for speed: one per-example epsilon costs about 3 ms whatever N (the
scorer's interval family is 400 x ~400 thresholds), so ``model_draws`` model resamples
each recompute every example's epsilon once, and each is paired with
``resamples / model_draws`` independent draws of the examples, which only re-average
those epsilons' points. 200 resamples over 25 model draws cost 25 x (sets) x S
epsilons: about 30 s of one core for three sets of S = 130 examples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from statistics import NormalDist

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


def set_stream(seed: int, name: str) -> np.random.Generator:
    """The random stream of one set's model draws, keyed by the seed and a stable hash of
    the set's name (sha256: Python's ``hash`` of a string changes between processes)."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return np.random.default_rng(np.random.SeedSequence([seed, key]))


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
    rng = np.random.default_rng(seed)  # the references' and the examples' draws
    streams = {name: set_stream(seed, name) for name in sets}  # each set's model draws
    per = resamples // model_draws
    f_out = {name: np.empty(resamples) for name in sets}
    s_out = {name: np.empty(resamples) for name in sets}
    for d in range(model_draws):
        ref_models = rng.integers(0, refs.num_models, refs.num_models)
        examples = rng.integers(0, n_ex, (per, n_ex))  # [per, S] example draws
        for name, s in sets.items():
            models = streams[name].integers(0, s.num_models, s.num_models)
            fq = forget_quality(s.confs[models], refs.confs[ref_models], empty_eps=0.0,
                                workers=workers)
            f = fq.points[examples].mean(axis=1)  # [per]
            rows = slice(d * per, (d + 1) * per)
            f_out[name][rows] = f
            s_out[name][rows] = f * _ratio(s, refs, models, ref_models)
    return {name: Draws(f_out[name], s_out[name]) for name in sets}


def interval(value: float, draws: np.ndarray, level: float = LEVEL,
             floor: float | None = None) -> Interval:
    """``value`` +- z * the bootstrap's standard error (z = 1.96 for 95%).

    Not the percentile interval: a model resample holds duplicates (about a third of the
    N models), and identical models lower a column's spread, so every resample's F sits
    below the exact F by a shift that the percentiles would carry into the interval
    (measured on digits at N = 8: the retrain oracle's F 0.185, its resamples' 2.5-97.5%
    range 0.123-0.179). The standard error of the resamples is unaffected by that shift.
    ``floor`` clips the low end (0 for F and scores).
    """
    finite = draws[np.isfinite(draws)]
    if len(finite) < 2 or not np.isfinite(value):
        return Interval(float(value), float("nan"), float("nan"))
    half = NormalDist().inv_cdf(0.5 + level / 2) * float(np.std(finite, ddof=1))
    low = value - half if floor is None else max(floor, value - half)
    return Interval(float(value), float(low), float(value + half))


def ratio_interval(value: float, num: np.ndarray, den: np.ndarray,
                   level: float = LEVEL) -> Interval:
    """The interval of num / den over paired resamples (resamples with den = 0 dropped)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return interval(value, np.where(den > 0, num / den, np.nan), level, floor=0.0)


RETRAIN_ORACLE, ORIGINAL_ORACLE = "oracle_retrain", "oracle_original"


def summarise(sets: dict[str, ModelSet], refs: ModelSet, points: dict[str, tuple[float, float]],
              *, resamples: int = RESAMPLES, model_draws: int = MODEL_DRAWS, seed: int = 0,
              workers: int = 1) -> dict:
    """JSON-ready intervals of every set's F and score from one paired bootstrap.

    ``points`` holds each set's exact ``(F, score)``. Each set other than the oracles
    also gets its score as a fraction of the retrain oracle's and its difference from
    the original oracle's (``distinguishable_from_original``: that interval excludes 0);
    ``oracle_gap`` is the retrain oracle's score minus the original oracle's, with its
    size in half-widths of its own interval (how well the benchmark discriminates).
    """
    draws = bootstrap(sets, refs, resamples=resamples, model_draws=model_draws, seed=seed,
                      workers=workers)
    return describe(draws, points, {"resamples": resamples, "model_draws": model_draws,
                                    "seed": seed, "level": LEVEL})


def describe(draws: dict[str, Draws], points: dict[str, tuple[float, float]],
             how: dict) -> dict:
    """The JSON-ready rows of :func:`summarise` from draws already made (``how``: the
    bootstrap's settings, written as ``bootstrap``)."""
    out: dict = {}
    for name, d in draws.items():
        f, score = points[name]
        row = {"forget_quality": interval(f, d.forget_quality, floor=0.0).to_dict(),
               "score": interval(score, d.score, floor=0.0).to_dict()}
        if name != RETRAIN_ORACLE and RETRAIN_ORACLE in draws:
            ceiling = points[RETRAIN_ORACLE][1]
            value = score / ceiling if ceiling > 0 else float("nan")
            row["fraction_of_retrain_oracle"] = ratio_interval(
                value, d.score, draws[RETRAIN_ORACLE].score).to_dict()
        if name != ORIGINAL_ORACLE and ORIGINAL_ORACLE in draws:
            diff = interval(score - points[ORIGINAL_ORACLE][1], d.score - draws[ORIGINAL_ORACLE].score)
            row["minus_original_oracle"] = diff.to_dict()
            row["distinguishable_from_original"] = not diff.contains(0.0)
        out[name] = row
    if RETRAIN_ORACLE in draws and ORIGINAL_ORACLE in draws:
        gap = interval(points[RETRAIN_ORACLE][1] - points[ORIGINAL_ORACLE][1],
                       draws[RETRAIN_ORACLE].score - draws[ORIGINAL_ORACLE].score)
        half = gap.half_width()
        out["oracle_gap"] = {**gap.to_dict(),
                             "in_half_widths": gap.value / half if half > 0 else float("inf")}
    out["bootstrap"] = dict(how)
    return out
