"""Tests of the secondary metrics (unlearnkit.metrics.secondary)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unlearnkit.metrics import secondary as mt


def test_cross_entropy_by_hand():
    # [0, 0] with y = 0: log 2. [ln 3, 0] with y = 0: -log(3/4) = log(4/3).
    losses = mt.cross_entropy_losses(np.array([[0.0, 0.0], [math.log(3), 0.0]]), np.array([0, 0]))
    np.testing.assert_allclose(losses, [math.log(2), math.log(4 / 3)], rtol=1e-12)
    # Large logits stay finite: logsumexp is shifted by the row max.
    big = mt.cross_entropy_losses(np.array([[1000.0, 0.0]]), np.array([1]))
    np.testing.assert_allclose(big, [1000.0])


def test_simple_mia_same_distribution_is_near_chance():
    rng = np.random.default_rng(0)
    acc = mt.simple_mia(rng.exponential(1.0, 2000), rng.exponential(1.0, 3000))
    assert 0.42 < acc < 0.58


def test_simple_mia_separated_losses_are_found():
    # Forgotten (member) examples have small losses, test examples large ones.
    rng = np.random.default_rng(1)
    acc = mt.simple_mia(rng.uniform(0, 0.1, 500), rng.uniform(2, 3, 400))
    assert acc > 0.98


def test_simple_mia_is_seeded():
    rng = np.random.default_rng(2)
    f, t = rng.exponential(1.0, 300), rng.exponential(1.3, 500)
    assert mt.simple_mia(f, t, seed=3) == mt.simple_mia(f, t, seed=3)


def test_zrf_js_identical_outputs_is_one_and_opposite_is_one_minus_ln2():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(10), 50)
    assert mt.zrf_js(p, p) == pytest.approx(1.0, abs=1e-12)
    # Disjoint one-hot rows: JS = ln 2 exactly.
    a = np.eye(4)[[0, 1, 2]]
    b = np.eye(4)[[1, 2, 3]]
    assert mt.zrf_js(a, b) == pytest.approx(1 - math.log(2), rel=1e-12)


def test_zrf_js_by_hand_and_from_logits():
    # p = [.5, .5], q = [1, 0]: m = [.75, .25];
    # KL(p||m) = .5 ln(.5/.75) + .5 ln(.5/.25), KL(q||m) = ln(1/.75).
    p, q = np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]])
    js = 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2)) + 0.5 * math.log(1 / 0.75)
    assert mt.zrf_js(p, q) == pytest.approx(1 - js, rel=1e-12)
    logits = np.log(np.array([[0.2, 0.3, 0.5]]))
    assert mt.zrf_js(logits, logits + 7.0, logits=True) == pytest.approx(1.0)


def test_zrf_official_reverses_kl_and_averages_over_classes():
    # Same p, q: official = 1 - [mean_c m ln(m/p) + mean_c m ln(m/q)] / 2, C = 2.
    p, q = np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]])
    m = (p + q) / 2
    kl_mp = (m * np.log(m / p)).sum() / 2
    kl_mq = (m * np.log(m / q)).sum() / 2
    assert mt.zrf_official(p, q) == pytest.approx(1 - 0.5 * kl_mp - 0.5 * kl_mq, rel=1e-12)
    # Class averaging pulls it toward 1: closer to 1 than the paper's variant here.
    assert 1 - mt.zrf_official(p, q) < 1 - mt.zrf_js(p, q)
    assert mt.zrf_official(p, p) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.filterwarnings("ignore:reduction")
def test_zrf_official_matches_torch_kl_div():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    p, q = rng.dirichlet(np.ones(10), 30), rng.dirichlet(np.ones(10), 30)
    tp, tq = torch.tensor(p), torch.tensor(q)
    m = (tp + tq) / 2
    f = torch.nn.functional.kl_div
    ref = 1 - (0.5 * f(torch.log(tp), m) + 0.5 * f(torch.log(tq), m)).item()
    assert mt.zrf_official(p, q) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mt.cross_entropy_losses(np.zeros(3), np.zeros(3, int)), "logits: expected a 2-D"),
        (lambda: mt.cross_entropy_losses(np.array([[np.nan, 0.0]]), np.array([0])), "logits: must be finite"),
        (lambda: mt.cross_entropy_losses(np.zeros((2, 3)), np.array([0, 3])), "targets: labels must lie"),
        (lambda: mt.cross_entropy_losses(np.zeros((2, 3)), np.array([0])), "targets: expected shape"),
        (lambda: mt.simple_mia(np.ones((5, 2)), np.ones(5)), "forget_losses: expected a 1-D"),
        (lambda: mt.simple_mia(np.ones(5), np.array([1.0] * 4 + [np.inf])), "test_losses: contains NaN"),
        (lambda: mt.simple_mia(np.ones(3), np.ones(5)), "forget_losses: need at least 5"),
        (lambda: mt.zrf_js(np.ones((2, 2)), np.ones((2, 2))), "model_probs: rows must be probabilities"),
        (lambda: mt.zrf_js(np.eye(2), np.eye(3)), "shapes differ"),
        (lambda: mt.zrf_official(np.eye(2), np.full((2, 2), np.nan)), "random_probs: contains NaN"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
