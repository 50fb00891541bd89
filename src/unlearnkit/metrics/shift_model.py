"""Why a set of models scores the forget quality it does: per-example shifts, and what
fixing them would be worth.

Forget quality compares, per forget example i, the N unlearned models' logit-scaled
confidences with the N references'. Measured in the references' standard deviation of
that example, a set of models differs from the references in two ways: its mean sits
``shift_i`` away, and its runs vary ``spread_i`` times as much. The shifts split into a
part every example shares (their mean: a global over- or under-confidence, which one
offset or temperature could remove) and a part that differs from example to example
(their std: what the method inherited of one model's view of each example, which no
global change removes). With N models a side, each measured shift also carries sampling
noise of variance about (1 + spread_i^2) / N (0.25 sd at N = 32 for a retrain against
the references); :class:`ShiftSummary` reports the per-example part with and without it,
and :func:`ceilings` takes the noise out before it models anything.

:func:`gaussian_forget_quality` gives F under the model that each example's confidences
are Gaussian: N references ~ N(0, 1), N unlearned ~ N(shift_i, spread_i^2), scored with
the competition's own :func:`~unlearnkit.metrics.competition.forget_quality`. On the
kit's ResNet-18 benchmark it reproduces the measured F of the board's methods to within
0.09 of the retrain oracle's at N = 32 (0.15 at N = 16; docs/results.md), so its
counterfactuals (the common shift removed, the spread set to 1) say what each kind of
fix can reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .competition import forget_quality


def shift_and_spread(unlearned: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per example: ``(mean U - mean R) / std R`` and ``std U / std R``, from two [N, S]
    confidence matrices (std over models, ddof 0). # [S], [S]"""
    u, r = np.asarray(unlearned, np.float64), np.asarray(refs, np.float64)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1]:
        raise ValueError(f"shift_and_spread needs two [N, S] matrices over the same S "
                         f"examples, got {u.shape} and {r.shape}")
    sd_r = r.std(axis=0) + 1e-9
    return (u.mean(axis=0) - r.mean(axis=0)) / sd_r, u.std(axis=0) / sd_r


@dataclass(frozen=True)
class ShiftSummary:
    """A set of models' per-example shifts, split into the common and the per-example part."""

    mean_shift: float
    """Mean of the shifts: what every example shares (+: over-confident on the forget set)."""
    example_sd: float
    """Std of the shifts across examples: what differs from example to example."""
    noise_sd: float
    """The part of ``example_sd`` that N models' sampling alone gives: sqrt(mean((1 +
    spread^2) / N))."""
    true_example_sd: float
    """``example_sd`` without that noise: sqrt(max(0, example_sd^2 - noise_sd^2))."""
    rms: float
    """Root mean square of the shifts (rms^2 = mean_shift^2 + example_sd^2)."""
    median_spread: float
    """Median of the spreads (1: the runs vary as retrains do)."""
    correlation: float
    """Pearson correlation, over examples, of the set's mean confidence with the
    references' (1: every example ranked as the retrains rank it)."""


def sampling_noise_sd(spread: np.ndarray, num_models: int) -> float:
    """Std that N models a side add to a measured shift: sqrt(mean((1 + spread^2) / N))."""
    return float(np.sqrt(np.mean((1.0 + np.asarray(spread) ** 2) / num_models)))


def _per_example_sd(shift: np.ndarray, spread: np.ndarray, num_models: int
                    ) -> tuple[float, float, float]:
    """The shifts' std across examples, its sampling noise, and the std without it."""
    sd, noise = float(shift.std()), sampling_noise_sd(spread, num_models)
    return sd, noise, float(np.sqrt(max(0.0, sd ** 2 - noise ** 2)))


def summarise_shifts(unlearned: np.ndarray, refs: np.ndarray) -> ShiftSummary:
    """:class:`ShiftSummary` of two [N, S] confidence matrices."""
    shift, spread = shift_and_spread(unlearned, refs)
    u_mean, r_mean = np.mean(unlearned, axis=0), np.mean(refs, axis=0)
    flat = np.std(u_mean) == 0 or np.std(r_mean) == 0
    corr = 0.0 if flat else float(np.corrcoef(u_mean, r_mean)[0, 1])
    sd, noise, true_sd = _per_example_sd(shift, spread, np.asarray(refs).shape[0])
    return ShiftSummary(float(shift.mean()), sd, noise, true_sd,
                        float(np.sqrt(np.mean(shift ** 2))), float(np.median(spread)), corr)


def gaussian_forget_quality(shift, spread, num_models: int, draws: int = 16,
                            seed: int = 0) -> float:
    """Expected F when example i's N references are N(0, 1) and its N unlearned models
    N(shift_i, spread_i^2): the competition's F over ``draws`` independent draws of
    every example, averaged (seeded; ``shift`` and ``spread`` broadcast to one [S])."""
    if num_models < 3:
        raise ValueError(f"num_models must be at least 3 (F is 0 below), got {num_models}")
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    shift, spread = np.broadcast_arrays(np.asarray(shift, np.float64),
                                        np.asarray(spread, np.float64))
    shift, spread = np.atleast_1d(shift), np.atleast_1d(spread)
    if shift.ndim != 1 or not (np.isfinite(shift).all() and np.isfinite(spread).all()):
        raise ValueError("shift and spread must be finite vectors over the examples")
    if (spread < 0).any():
        raise ValueError("spread must be >= 0 (a ratio of standard deviations)")
    rng = np.random.default_rng(seed)
    s = len(shift)
    refs = rng.normal(size=(num_models, s * draws))
    unlearned = np.tile(shift, draws) + np.tile(spread, draws) * rng.normal(
        size=(num_models, s * draws))
    return float(forget_quality(unlearned, refs).score)


@dataclass(frozen=True)
class Ceilings:
    """F under the Gaussian model, as fractions of its retrain (shift 0, spread 1)."""

    retrain: float
    """F of shift 0, spread 1 (the model's retrain oracle), absolute."""
    as_measured: float
    """The set's own shifts and spreads (checks the model against the measured F)."""
    common_removed: float
    """The common shift removed (the best one global offset could do)."""
    spread_one: float
    """The common shift removed and every spread 1: what is left is the per-example part."""


def ceilings(unlearned: np.ndarray, refs: np.ndarray, draws: int = 64,
             seed: int = 0) -> Ceilings:
    """:class:`Ceilings` of a set of models against its references ([N, S] each). The
    per-example part of the shifts is first shrunk by the sampling noise
    (:attr:`ShiftSummary.true_example_sd`), as the model draws its own."""
    shift, spread = shift_and_spread(unlearned, refs)
    n = np.asarray(refs).shape[0]
    f = lambda d, r: gaussian_forget_quality(d, r, n, draws, seed)  # noqa: E731
    base = f(np.zeros_like(shift), 1.0)
    sd, _, true_sd = _per_example_sd(shift, spread, n)
    own = shift - shift.mean()
    if sd > 0:
        own = own * (true_sd / sd)
    spread = denoised_spread(spread, n)
    return Ceilings(base, f(own + shift.mean(), spread) / base, f(own, spread) / base,
                    f(own, 1.0) / base)


def denoised_spread(spread: np.ndarray, num_models: int) -> np.ndarray:
    """``spread`` with the sampling noise of its logarithm taken out: each log spread
    pulled towards their mean so that their variance loses 1 / (N - 1), the variance
    that the log of a ratio of two N-model standard deviations has when they are equal."""
    logs = np.log(np.maximum(np.asarray(spread, np.float64), 1e-9))
    var, noise = logs.var(), 1.0 / (num_models - 1)
    keep = np.sqrt(max(0.0, var - noise) / var) if var > 0 else 0.0
    return np.exp(logs.mean() + keep * (logs - logs.mean()))
