"""The bootstrap intervals on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from unlearnkit.metrics.competition import final_score, forget_quality
from unlearnkit.metrics.intervals import (
    ORIGINAL_ORACLE,
    RETRAIN_ORACLE,
    ModelSet,
    check_models,
    interval,
    summarise,
)

S = 40  # forget examples: enough for stable intervals, cheap to score


def _set(rng, n, shift=0.0, spread=1.0, acc=0.95) -> ModelSet:
    return ModelSet(rng.normal(shift, spread, (n, S)), np.full(n, acc), np.full(n, acc))


def _points(sets, refs):
    out = {}
    for name, s in sets.items():
        fq = forget_quality(s.confs, refs.confs)
        out[name] = (fq.score, final_score(fq, s.retain_acc, s.test_acc, refs.retain_acc,
                                           refs.test_acc))
    return out


def _summary(sets, refs, **kw):
    kw.setdefault("resamples", 40)
    kw.setdefault("model_draws", 10)
    return summarise(sets, refs, _points(sets, refs), **kw)


def test_far_apart_sets_have_a_zero_width_interval_at_zero():
    rng = np.random.default_rng(0)
    refs = _set(rng, 8)
    out = _summary({"far": _set(rng, 8, shift=100.0)}, refs)
    assert out["far"]["forget_quality"] == {"value": 0.0, "low": 0.0, "high": 0.0}


def test_an_identical_copy_of_a_set_is_not_distinguishable_from_it():
    """A method whose runs are the original oracle's models: same score, difference 0."""
    rng = np.random.default_rng(1)
    refs, same = _set(rng, 8), _set(rng, 8, shift=0.3)
    out = _summary({ORIGINAL_ORACLE: same, RETRAIN_ORACLE: _set(rng, 8), "method": same}, refs)
    assert out["method"]["score"]["value"] == out[ORIGINAL_ORACLE]["score"]["value"]
    assert out["method"]["distinguishable_from_original"] is False
    lo, hi = out["method"]["minus_original_oracle"]["low"], out["method"]["minus_original_oracle"]["high"]
    assert lo < 0 < hi


def test_a_far_method_is_distinguishable_and_below_the_original():
    rng = np.random.default_rng(2)
    refs = _set(rng, 8)
    sets = {ORIGINAL_ORACLE: _set(rng, 8), RETRAIN_ORACLE: _set(rng, 8),
            "method": _set(rng, 8, shift=50.0)}
    out = _summary(sets, refs)
    assert out["method"]["distinguishable_from_original"] is True
    assert out["method"]["minus_original_oracle"]["high"] < 0
    frac = out["method"]["fraction_of_retrain_oracle"]
    assert frac["value"] == 0.0 and frac["low"] == 0.0


def test_every_interval_holds_its_point_and_reruns_repeat():
    rng = np.random.default_rng(3)
    refs = _set(rng, 8)
    sets = {RETRAIN_ORACLE: _set(rng, 8), ORIGINAL_ORACLE: _set(rng, 8, spread=0.5)}
    a, b = _summary(sets, refs, seed=7), _summary(sets, refs, seed=7)
    assert a == b
    for name in sets:
        for key in ("forget_quality", "score"):
            i = a[name][key]
            assert i["low"] <= i["value"] <= i["high"] and i["high"] > i["low"]
    assert a["oracle_gap"]["in_half_widths"] == pytest.approx(
        a["oracle_gap"]["value"] / ((a["oracle_gap"]["high"] - a["oracle_gap"]["low"]) / 2))


def test_the_interval_narrows_as_n_grows():
    """Same distributions, same examples: more models per side, a narrower interval."""
    def width(n):
        rng = np.random.default_rng(4)
        refs = _set(rng, n)
        out = _summary({"m": _set(rng, n, shift=0.5)}, refs)
        return out["m"]["forget_quality"]["high"] - out["m"]["forget_quality"]["low"]

    assert width(64) < width(8)


def test_interval_is_point_plus_minus_196_standard_errors():
    draws = np.array([1.0, 2.0, 3.0, 4.0])
    i = interval(10.0, draws)
    half = 1.959964 * np.std(draws, ddof=1)
    assert i.low == pytest.approx(10 - half, rel=1e-6) and i.high == pytest.approx(10 + half, rel=1e-6)
    assert interval(0.1, draws, floor=0.0).low == 0.0


@pytest.mark.parametrize("n", [1, 2, 3])
def test_too_few_models_are_refused_with_the_smallest_useful_n(n):
    with pytest.raises(ValueError, match="N >= 4"):
        check_models(n)
