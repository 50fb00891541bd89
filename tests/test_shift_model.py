"""metrics.shift_model: the shifts' decomposition is exact on built data, the sampling
noise is what N models give, and the Gaussian model's F falls with every kind of shift."""

from __future__ import annotations

import numpy as np
import pytest

from unlearnkit.metrics.shift_model import (
    ceilings,
    denoised_spread,
    gaussian_forget_quality,
    sampling_noise_sd,
    shift_and_spread,
    summarise_shifts,
)


def _refs(n: int = 32, s: int = 200, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, s))


def test_shift_and_spread_measure_in_the_references_sd():
    refs = np.array([[0.0, 10.0], [2.0, 14.0]])  # means 1, 12; sds 1, 2
    unlearned = np.array([[2.0, 12.0], [4.0, 12.0]])  # means 3, 12; sds 1, 0
    shift, spread = shift_and_spread(unlearned, refs)
    np.testing.assert_allclose(shift, [2.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(spread, [1.0, 0.0], atol=1e-6)


def test_the_summary_splits_the_shifts_into_common_and_per_example_parts():
    refs = _refs()
    offsets = np.where(np.arange(200) % 2 == 0, 1.0, 3.0)  # mean 2, std 1 (in ref sds)
    unlearned = refs * 0 + refs.mean(axis=0) + offsets * refs.std(axis=0) + _refs(seed=1)
    s = summarise_shifts(unlearned, refs)
    assert s.mean_shift == pytest.approx(2.0, abs=0.1)
    assert s.example_sd == pytest.approx(1.0, abs=0.1)
    assert s.rms ** 2 == pytest.approx(s.mean_shift ** 2 + s.example_sd ** 2, rel=1e-9)
    assert s.true_example_sd < s.example_sd


def test_the_correlation_follows_the_references_ranking_of_the_examples():
    rng = np.random.default_rng(0)
    level = rng.normal(0, 3, size=100)  # each example's own confidence level
    refs = level + rng.normal(size=(32, 100))
    assert summarise_shifts(level + 1 + rng.normal(size=(32, 100)), refs).correlation > 0.9
    assert abs(summarise_shifts(rng.normal(size=(32, 100)), refs).correlation) < 0.3
    assert summarise_shifts(np.ones((32, 100)), refs).correlation == 0.0  # flat: no ranking


def test_a_retrain_against_retrains_has_no_per_example_part_beyond_the_noise():
    refs, retrains = _refs(seed=0), _refs(seed=1)
    s = summarise_shifts(retrains, refs)
    assert s.example_sd == pytest.approx(s.noise_sd, rel=0.2)  # all of it is sampling noise
    assert s.true_example_sd < 0.1
    assert sampling_noise_sd(np.ones(5), 32) == pytest.approx(0.25)


def test_denoising_the_spread_keeps_its_centre_and_narrows_it():
    spread = np.exp(np.random.default_rng(0).normal(0.2, 0.4, size=500))
    out = denoised_spread(spread, 32)
    assert np.log(out).mean() == pytest.approx(np.log(spread).mean(), abs=1e-9)
    assert np.log(out).var() == pytest.approx(np.log(spread).var() - 1 / 31, rel=1e-6)
    np.testing.assert_allclose(denoised_spread(np.full(4, 1.3), 32), 1.3)  # nothing to remove


@pytest.mark.parametrize("n", [16, 32])
def test_the_gaussian_f_falls_with_shift_and_with_a_wrong_spread(n):
    f = lambda d, r: gaussian_forget_quality(np.full(100, d), r, n, draws=8)  # noqa: E731
    matched = f(0.0, 1.0)
    assert 0.1 < matched < 0.35
    assert f(0.5, 1.0) < matched and f(1.5, 1.0) < f(0.5, 1.0)
    assert f(0.0, 0.4) < matched and f(0.0, 2.0) < matched
    per_example = gaussian_forget_quality(np.random.default_rng(0).normal(0, 1, 100), 1.0, n,
                                          draws=8)
    assert per_example < matched


def test_the_ceilings_rise_as_fixes_are_added_and_a_retrain_reaches_one():
    refs, retrains = _refs(s=60, seed=0), _refs(s=60, seed=1)
    own = ceilings(retrains, refs, draws=8)
    assert own.as_measured == pytest.approx(1.0, abs=0.1)
    shifted = refs.mean(axis=0) + 1.5 * refs.std(axis=0) \
        + 0.5 * (retrains - retrains.mean(axis=0))  # over-confident, too alike
    c = ceilings(shifted, refs, draws=8)
    assert c.as_measured < c.common_removed < c.spread_one
    assert c.spread_one == pytest.approx(1.0, abs=0.12)  # no per-example part was built in


@pytest.mark.parametrize("bad", [
    lambda: shift_and_spread(np.zeros((3, 4)), np.zeros((3, 5))),
    lambda: gaussian_forget_quality([0.0], 1.0, 2),
    lambda: gaussian_forget_quality([0.0], 1.0, 8, draws=0),
    lambda: gaussian_forget_quality([np.nan], 1.0, 8),
    lambda: gaussian_forget_quality([0.0], -1.0, 8),
])
def test_bad_inputs_are_refused(bad):
    with pytest.raises(ValueError):
        bad()


def test_the_budget_script_falls_with_the_per_example_sd():
    from script_modules import load_script

    rows = load_script("shift_budget").budget(16, [0.0, 0.5, 1.0], [1.0, 1.5], examples=40,
                                              draws=4, seed=0)
    assert rows[0][0] == pytest.approx(1.0)
    assert rows[0][0] > rows[1][0] > rows[2][0]
    assert rows[0][1] < 1.0  # too wide a spread costs too
