"""Tests of the competition metric (unlearnkit.metrics.competition).

The fast path is checked against the dense oracle (every model against every
threshold) on random columns, and both against answers worked out by hand from
the metric's definition (docs/scoring.md).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from unlearnkit.metrics import competition as sc

F32 = np.float32
C = F32(1 - 1e-5)  # 1 - delta, as the scorer forms it on a float32 array


def eps_formula(fpr: float, fnr: float) -> np.float32:
    """The spec's per-threshold epsilon written out in float32 (for hand answers)."""
    fpr, fnr = F32(fpr), F32(fnr)
    with np.errstate(invalid="ignore"):
        a = np.log(C - fpr) - np.log(fnr)
        b = np.log(C - fnr) - np.log(fpr)
    return F32(max(np.fmax(a, b), F32(0)))


# ---------------------------------------------------------------- fast == dense


def _column_pair(rng: np.random.Generator, n: int, kind: str):
    """Two columns [N] of one of several shapes of data."""
    if kind == "gauss":  # same distribution
        return rng.normal(size=n), rng.normal(size=n)
    if kind == "shift":  # overlapping, shifted
        return rng.normal(size=n), rng.normal(size=n) + rng.uniform(0.2, 3)
    if kind == "discrete":  # many ties, equal medians likely
        return rng.integers(0, 4, n) * 0.5, rng.integers(0, 4, n) * 0.5
    if kind == "narrow":  # range ratio near the 1% rule, both sides of it
        return rng.normal(size=n) * rng.choice([0.005, 0.02, 0.05]), rng.normal(size=n) * 2
    if kind == "wide":  # wide spread: many single thresholds
        return rng.normal(size=n) * 15, rng.normal(size=n) * 15 + 5
    if kind == "separated":
        return rng.normal(size=n), rng.normal(size=n) + 8
    if kind == "constant":  # one side constant (range rule) or both constant
        c = float(rng.integers(0, 3))
        other = rng.normal(size=n) if rng.random() < 0.5 else np.full(n, c + rng.choice([0.0, 0.003, 1.0]))
        return np.full(n, c), other
    if kind == "saturated":  # the logit-scaled confidence's +-103.6 plateaus
        return np.clip(rng.normal(100, 5, n), None, 103.6), np.clip(rng.normal(101, 5, n), None, 103.6)
    raise AssertionError(kind)


KINDS = ["gauss", "shift", "discrete", "narrow", "wide", "separated", "constant", "saturated"]


@pytest.mark.parametrize("n", [2, 3, 8, 16, 41, 64])
def test_fast_equals_dense_on_random_columns(n):
    rng = np.random.default_rng(1000 + n)
    compared = 0
    for kind in KINDS:
        for _ in range(4):
            u, r = _column_pair(rng, n, kind)
            if rng.random() < 0.5:
                u, r = r, u
            try:
                dense = sc.epsilon_dense(u, r)
            except sc.NoThresholdKeptError:
                with pytest.raises(sc.NoThresholdKeptError):
                    sc.epsilon_fast(u, r)
                continue
            fast = sc.epsilon_fast(u, r)
            assert fast.dtype == np.float32
            assert fast == dense, (kind, u, r)  # exact equality
            compared += 1
    assert compared >= 20


def test_fast_equals_dense_with_confidences_on_the_thresholds():
    # Put confidences exactly on threshold values (single grid, right and left edges)
    # so every >=, <= and < decides something; the grids stay put because each side's
    # min and max (hence ranges and the pooled min and max) are unchanged.
    rng = np.random.default_rng(31)
    for n in (8, 16, 41):
        for _ in range(6):
            u, r = rng.normal(size=n), rng.normal(size=n) * 1.5 + 0.3
            pos, neg = sc._sides(u, r)
            _, _, right, width = sc._interval_grid(pos, neg)
            j = rng.integers(right.size)
            pool = np.concatenate([
                sc._single_grid(pos, neg, True).astype(np.float64),
                right,
                np.linspace(right[j] - width - 2.0, right[j] - width + 2.0, num=400),
            ])
            for side in (u, r):
                inner = pool[(pool > side.min()) & (pool < side.max())]
                idx = [i for i in range(n) if i not in (side.argmin(), side.argmax())]
                pick = rng.choice(idx, size=len(idx) // 2, replace=False)
                side[pick] = rng.choice(inner, size=pick.size)
            assert sc.epsilon_fast(u, r) == sc.epsilon_dense(u, r), (u, r)


def test_fast_counts_are_closed_intervals_and_upper_sets():
    # The fast path's (TP, FP) keys against plain counting, with thresholds placed on
    # the confidences themselves so that every <= and >= decides.
    rng = np.random.default_rng(41)
    for n in (2, 5, 16):
        pos = rng.integers(0, 6, n) * 0.5
        neg = rng.integers(0, 6, n) * 0.5
        values, below_pos, below_neg = sc._merge(pos, neg)
        edges = np.concatenate([np.unique(np.concatenate([pos, neg])), rng.uniform(-1, 4, 5)])
        key = sc._single_keys(values, below_pos, below_neg, edges)
        assert key.tolist() == [(pos >= t).sum() * (n + 1) + (neg >= t).sum() for t in edges]
        left, right = edges[:, None], edges[None, :]  # every pair, empty ones included
        key = sc._interval_keys(values, below_pos, below_neg, left, right)
        for (i, j), k in np.ndenumerate(key):
            lo, hi = edges[i], edges[j]
            tp, fp = ((lo <= pos) & (pos <= hi)).sum(), ((lo <= neg) & (neg <= hi)).sum()
            assert max(k, 0) == tp * (n + 1) + fp


def test_left_edges_are_numpys_linspace_bit_for_bit():
    rng = np.random.default_rng(5)
    start = rng.uniform(-110, 110, 3000) * rng.choice([1, 1e-3, 1e3], 3000)
    # the metric's spans (2 * BUFFER) and others, where j * step + start can miss stop
    stop = start + np.where(rng.random(3000) < 0.5, 2 * sc.BUFFER, rng.uniform(0.1, 50, 3000))
    step = (stop - start) / (sc.NUM_LEFT - 1)
    j = np.arange(sc.NUM_LEFT, dtype=np.float64)[:, None]
    np.testing.assert_array_equal(sc._left_edge(j, start, step, stop),
                                  np.linspace(start, stop, num=sc.NUM_LEFT))


def test_left_edge_counts_are_exact_on_and_beside_the_edges():
    # Values placed on left edges, one ulp either side of them, and far outside: the
    # count of edges <= each value must equal plain counting on np.linspace's edges.
    rng = np.random.default_rng(6)
    start = np.sort(rng.uniform(-5, 5, 40))
    stop = start + 2 * sc.BUFFER
    edges = np.linspace(start, stop, num=sc.NUM_LEFT)  # [400, R]
    on = edges[rng.integers(0, sc.NUM_LEFT, 30), rng.integers(0, start.size, 30)]
    values = np.sort(np.concatenate([
        on, np.nextafter(on, np.inf), np.nextafter(on, -np.inf), edges[-1, :5], edges[0, :5],
        [-1e3, 1e3], rng.uniform(-10, 10, 20)]))
    got = sc._edges_at_or_below(values, start, stop)
    want = (edges[None, :, :] <= values[:, None, None]).sum(axis=1)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [2, 5, 16, 41])
def test_interval_family_scored_by_distinct_counts_equals_every_left_edge(n):
    rng = np.random.default_rng(60 + n)
    for kind in KINDS:
        u, r = _column_pair(rng, n, kind)
        pos, neg = sc._sides(u, r)
        peaky, _, right, width = sc._interval_grid(pos, neg)
        if not right.size:
            continue
        values, below_pos, below_neg = sc._merge(pos, neg)
        b_peaky, b_wide = (below_pos, below_neg) if peaky is pos else (below_neg, below_pos)
        table = sc._eps_table(n, sc._mean_factor(n, sc.NUM_LEFT * right.size))
        shifted = right - width
        left = np.linspace(shifted - sc.BUFFER, shifted + sc.BUFFER, num=sc.NUM_LEFT)
        every = table.take(sc._interval_keys(values, b_peaky, b_wide, left, right),
                           mode="clip").max()
        assert sc._interval_best(values, b_peaky, b_wide, right, width, table) == every, kind


def test_fast_equals_dense_at_competition_size():
    rng = np.random.default_rng(7)
    u = rng.normal(size=(512, 3))
    r = np.stack([rng.normal(size=512), rng.normal(size=512) + 0.3, rng.normal(size=512) * 4], 1)
    fast, dense = sc.forget_quality(u, r), sc.forget_quality_dense(u, r)
    np.testing.assert_array_equal(fast.epsilons, dense.epsilons)
    assert fast.score == dense.score


def test_fast_equals_dense_without_fma_grid():
    rng = np.random.default_rng(3)
    for _ in range(5):
        u, r = _column_pair(rng, 16, "wide")
        assert sc.epsilon_fast(u, r, fma=False) == sc.epsilon_dense(u, r, fma=False)


def test_workers_and_progress_do_not_change_the_result():
    rng = np.random.default_rng(4)
    u, r = rng.normal(size=(16, 40)), rng.normal(size=(16, 40)) + 0.5
    one = sc.forget_quality(u, r)
    two = sc.forget_quality(u, r, workers=2, progress=True)
    np.testing.assert_array_equal(one.epsilons, two.epsilons)
    assert one.score == two.score


# ---------------------------------------------------------------- hand-worked answers


def test_perfect_separation_scores_zero():
    # N = 3, U in [0, 0.2], R in [5, 5.2]: equal ranges, so no 1% rule. Single
    # thresholds in (0.2, 5] have FPR = FNR = 0 and TPR = TNR = 1 (3 * fl(1/3) rounds to
    # 1 in float32): eps = +inf, clipped to 50. max_eps = ceil(ln 2) = 1, so 0 points.
    u = np.array([[0.0], [0.1], [0.2]])
    r = u + 5.0
    fq = sc.forget_quality(u, r)
    assert fq.epsilons[0] == 50.0
    assert fq.points[0] == 0.0
    assert fq.score == 0.0
    assert fq.max_eps == 1


def test_range_rule_caps_epsilon():
    # U spans 0.003, R spans 3: 0.003 / 3 = 0.001 < 0.01, so eps = 50 at once,
    # even though U sits inside R's range.
    u = np.array([0.0, 0.001, 0.002, 0.003])
    r = np.array([0.0, 1.0, 2.0, 3.0])
    assert sc.epsilon_fast(u, r) == 50.0
    assert sc.epsilon_dense(r, u) == 50.0


def test_range_rule_boundary_and_tied_medians():
    # Ranges 1 and 100: the ratio is exactly 0.01, not < 0.01, so the rule does not fire.
    # Medians tie at 0.5, so U is the positive side.
    # U = [0, .5, .5, 1], R = [-50, .5, .5, 50], N = 4, rates are multiples of 1/4.
    # Single thresholds (predict U iff conf >= t):
    #   t <= 0: TPR = 1, FNR = 0: discarded;   t in (0, .5]: TPR = FPR = .75: eps 0;
    #   t in (.5, 1]: TPR = FPR = .25: eps 0;  t in (1, 50]: FNR = 1, FPR = .25: eps 0.
    # Intervals (U is peakier): R's +-50 are never inside (right edges lie in [-1, 3]).
    #   [l <= 0, .5 <= r < 1] holds U {0, .5, .5} and R {.5, .5}: TPR .75, FPR .5, FNR .25:
    #   eps = max(log(C - .5) - log(.25), log(C - .25) - log(.5)) = log(C - .5) - log(.25).
    #   Intervals with all of U have FNR 0, those without the .5s have FPR 0: discarded.
    u = np.array([0.0, 0.5, 0.5, 1.0])
    r = np.array([-50.0, 0.5, 0.5, 50.0])
    expected = eps_formula(0.5, 0.25)
    assert expected == F32(np.log(C - F32(0.5)) - np.log(F32(0.25)))
    assert 0.69 < expected < 0.6932
    assert sc.epsilon_fast(u, r) == expected
    assert sc.epsilon_dense(u, r) == expected


def test_tied_medians_with_different_shapes():
    # U = [0, 1, 1, 10] and R = [.9, .95, 1.05, 1.1] both have median 1 (tie: U positive).
    # Ranges 10 and .2: ratio .02, no rule. N = 4.
    # Single thresholds: t in (.95, 1] gives U>=t: 3 (TPR .75), R>=t: 2 (FPR .5):
    #   eps = log(C - .5) - log(.25); every other t gives TPR <= FPR (eps 0) or a zero
    #   rate (discarded).
    # Intervals (R is peakier): 3 of R always brings both U 1s (FPR .5, TPR .75): the
    #   same value; 2 of R without the 1s has FPR 0; all 4 of R has FNR 0.
    u = np.array([0.0, 1.0, 1.0, 10.0])
    r = np.array([0.9, 0.95, 1.05, 1.1])
    assert sc.epsilon_fast(u, r) == eps_formula(0.5, 0.25)
    assert sc.epsilon_dense(u, r) == eps_formula(0.5, 0.25)


def test_tie_in_medians_makes_unlearned_positive():
    u, r = np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.0, 1.5])
    pos, neg = sc._sides(u, r)
    assert pos is u and neg is r
    pos, neg = sc._sides(u, r + 0.1)
    assert pos is not u


def test_threshold_epsilon_cases():
    # Perfect (FPR = FNR = 0, TPR = TNR = 1): +inf. Exactly one of FPR, FNR zero: dropped
    # (NaN). FPR = 1: the first log is NaN and the scorer's nanmax keeps the second,
    # log(C - .5) - log(1) < 0, clipped to 0. FPR = FNR = 1: both NaN, dropped.
    got = sc._threshold_eps(
        np.array([1, 0.5, 0.5, 0, 0.75], F32), np.array([0, 0.5, 0.5, 1, 0.25], F32),
        np.array([0, 0, 1, 1, 0.25], F32), np.array([1, 1, 0, 0, 0.75], F32),
    )
    assert got[0] == np.inf
    assert np.isnan(got[1]) and np.isnan(got[3])
    assert got[2] == 0.0
    assert got[4] == F32(np.log(C - F32(0.25)) - np.log(F32(0.25)))


def _equal_range_pair(rng: np.random.Generator, n: int):
    """Two overlapping random columns whose ranges are exactly equal in float64."""
    while True:
        r = rng.normal(size=n)
        u = rng.permutation(r) * rng.choice([-1.0, 1.0]) + rng.uniform(0.2, 0.8)
        if u.max() - u.min() == r.max() - r.min() and np.median(u) != np.median(r):
            return u, r


def _shrink(x: np.ndarray) -> np.ndarray:
    """x squeezed about its centre by 1e-9: a hair smaller range, same order."""
    c = (x.max() + x.min()) / 2
    return c + (x - c) * (1 - 1e-9)


def test_equal_ranges_make_the_originally_negative_side_peakier():
    # With equal ranges the interval family treats the originally negative side (the
    # smaller median) as the peakier one: the same epsilon as when that side's range is
    # a hair smaller, and (for this data) not the same as when the other side's is.
    rng = np.random.default_rng(21)
    differs = 0
    for _ in range(6):
        u, r = _equal_range_pair(rng, 16)
        neg_is_u = np.median(r) > np.median(u)  # R positive: U is the negative side
        base = sc.epsilon_fast(u, r)
        assert base == sc.epsilon_dense(u, r)
        as_neg = sc.epsilon_fast(_shrink(u), r) if neg_is_u else sc.epsilon_fast(u, _shrink(r))
        as_pos = sc.epsilon_fast(u, _shrink(r)) if neg_is_u else sc.epsilon_fast(_shrink(u), r)
        assert base == as_neg
        differs += base != as_pos
    assert differs >= 2


def test_grids_follow_the_spec():
    # Single: ceil((hi - lo) * 100) float32 points from the pooled min to max.
    t = sc._single_grid(np.array([0.0, 1.0, 2.5]), np.array([-0.5, 0.25, 1.0]), True)
    assert t.dtype == np.float32 and t.size == 300 and t[0] == -0.5 and t[-1] == 2.5
    # Interval: peaky side [1, 2] (w = 1), right edges from 1 + 1 - 2 = 0 to 2 + 2 = 4.
    peaky, wide = np.array([1.0, 1.5, 2.0]), np.array([0.0, 3.0, 5.0])
    got_peaky, got_wide, right, width = sc._interval_grid(wide, peaky)
    assert got_peaky is peaky and got_wide is wide and width == 1.0
    assert right.size == 400 and right[0] == 0.0 and right[-1] == 4.0


def test_interval_closed_at_the_last_right_edge():
    # P = [0, .5, .625, .75] is peakier (w = .75); Q = [.3, .3, 2.75, 5] (ratio .75/4.7).
    # Right edges run from 0 + .75 - 2 = -1.25 to exactly .75 + 2 = 2.75, and left edges
    # stay within 4 of P: Q's 5 is never inside, Q's 2.75 only for r = 2.75 (closed end).
    # Single thresholds (Q's median 1.525 > P's .5625: Q positive): the best is
    # t in (.625, .75]: Q>=t 2 (TPR .5), P>=t 1 (FPR .25): log(C - .5) - log(.25) = .693.
    # Intervals: all of P brings in both .3s (no perfect separation); 3 of P with one Q
    # (TPR .75, FPR .25, FNR .25) is only [l in (.3, .5], 2.75] holding P {.5, .625, .75}
    # and Q {2.75}: eps = log(C - .25) - log(.25) = 1.0986, the best of all.
    p = np.array([0.0, 0.5, 0.625, 0.75])
    q = np.array([0.3, 0.3, 2.75, 5.0])
    assert sc.epsilon_dense(p, q) == eps_formula(0.25, 0.25)
    assert sc.epsilon_fast(p, q) == eps_formula(0.25, 0.25)
    assert sc.epsilon_fast(q, p) == eps_formula(0.25, 0.25)
    # Moving Q's point off the edge (2.75 -> 2.76) leaves only the .693 thresholds.
    q[2] = 2.76
    assert sc.epsilon_dense(p, q) == eps_formula(0.5, 0.25)
    assert sc.epsilon_fast(p, q) == eps_formula(0.5, 0.25)


def test_identical_columns_score_one():
    # U = R = [0, 1, 2, 3]: every kept threshold has TPR = FPR, hence
    # log(C - FPR) < log(1 - FPR) = log(FNR): eps 0, bucket 0, 1 point. N = 4: max_eps 2.
    col = np.array([0.0, 1.0, 2.0, 3.0])
    fq = sc.forget_quality(np.stack([col, col], 1), np.stack([col, col], 1))
    assert fq.epsilons.tolist() == [0.0, 0.0]
    assert fq.score == 1.0
    assert fq.max_eps == 2
    assert fq.bucket_edges.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_both_sides_one_constant_keeps_no_threshold():
    # Both ranges 0: 0/0 is NaN, the 1% rule does not fire; no single threshold
    # (ceil(0) = 0); every interval holds all or none of both sides: FPR * FNR = 0.
    u = r = np.full(5, 2.0)
    with pytest.raises(sc.NoThresholdKeptError):
        sc.epsilon_fast(u, r)
    both = np.column_stack([np.arange(5.0), u])  # example 0 is fine, example 1 is not
    with pytest.raises(sc.NoThresholdKeptError, match="example 1"):
        sc.forget_quality(both, both)
    assert sc.forget_quality(both, both, empty_eps=0.0).score == 1.0
    assert sc.epsilon_fast(u, r, empty_eps=0.0) == 0.0
    assert sc.epsilon_dense(u, r, empty_eps=0.0) == 0.0


def test_both_sides_constant_and_apart_is_perfect_separation():
    # Both ranges 0 (no rule); single thresholds in (1, 2] separate perfectly: eps 50.
    assert sc.epsilon_fast(np.full(4, 1.0), np.full(4, 2.0)) == 50.0


def test_cuda_mean_quirk_discards_perfect_separation_for_n41():
    # For N = 41 the scorer's CUDA mean gives TPR = fl32(41 * fl32(1/41)) != 1, so
    # TPR + TNR != 2: perfectly separating thresholds are discarded, not +inf. With U in
    # [0, 1] and R in [10, 11] every other threshold has a zero rate: none is kept.
    assert F32(41) * (F32(1) / F32(41)) != 1
    u = np.linspace(0, 1, 41)
    with pytest.raises(sc.NoThresholdKeptError):
        sc.epsilon_fast(u, u + 10)
    # N = 40 has no such rounding: eps = +inf -> 50.
    v = np.linspace(0, 1, 40)
    assert sc.epsilon_fast(v, v + 10) == 50.0


def test_bucket_points():
    # N = 512: max_eps = ceil(ln 511) = 7, 14 buckets worth 1, 1/2, ..., 2^-13.
    assert sc.max_epsilon(512) == 7
    assert sc.max_epsilon(16) == 3
    assert sc.max_epsilon(2) == 0
    pts = sc.epsilon_points([0.0, 0.49, 0.5, 1.0, 6.99, 7.0, 50.0], 512)
    assert pts.tolist() == [1.0, 1.0, 0.5, 0.25, 2.0**-13, 0.0, 0.0]
    # N = 2: no bucket at all, F = 0 whatever happens.
    assert sc.epsilon_points([0.0], 2).tolist() == [0.0]


def test_forget_quality_is_mean_points():
    # Two examples: identical columns (eps 0, 1 point) and perfect separation (0 points).
    col = np.array([0.0, 1.0, 2.0, 3.0])
    u = np.stack([col, col], 1)
    r = np.stack([col, col + 100], 1)
    fq = sc.forget_quality(u, r)
    assert fq.points.tolist() == [1.0, 0.0]
    assert fq.score == 0.5
    assert fq.num_models == 4


def test_noise_floor_is_well_below_one():
    # Spec: same-distribution Gaussian columns give F about 0.23 at N = 64.
    rng = np.random.default_rng(11)
    fq = sc.forget_quality(rng.normal(size=(64, 300)), rng.normal(size=(64, 300)))
    assert 0.15 < fq.score < 0.35


# ---------------------------------------------------------------- logit-scaled confidence


def test_logit_scaled_confidence_by_hand():
    logits = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    y = np.array([0, 1, 1])
    # [1, 0] with y = 0: log(e / (e + 1)) - log(1 / (e + 1)) = 1.
    # [2, 0] with y = 1: -2.  [0, 3] with y = 1: 3.
    np.testing.assert_allclose(sc.logit_scaled_confidence(logits, y), [1.0, -2.0, 3.0], atol=1e-12)
    three = np.array([[2.0, 0.0, 0.0]])
    # p = [e^2, 1, 1] / (e^2 + 2); y = 1: log 1 - log(e^2 + 1).
    np.testing.assert_allclose(sc.logit_scaled_confidence(three, np.array([1])),
                               [-math.log(math.e**2 + 1)], rtol=1e-12)


def test_logit_scaled_confidence_saturates_at_1e45():
    # exp(-1000) underflows to 0: log(1 + 1e-45) - log(1e-45) = -log(1e-45) = 103.6...
    conf = sc.logit_scaled_confidence(np.array([[1000.0, 0.0], [1000.0, 0.0]]), np.array([0, 1]))
    np.testing.assert_allclose(conf, [-math.log(1e-45), math.log(1e-45)], rtol=1e-12)
    assert conf.dtype == np.float64


def test_logit_scaled_confidence_float32_logits_follow_the_scorer():
    # The scorer's exp runs in float32 on float32 logits, then normalises in float64.
    rng = np.random.default_rng(5)
    z = rng.normal(size=(50, 10)).astype(np.float32) * 4
    y = rng.integers(0, 10, 50)
    p = np.exp(z - z.max(1, keepdims=True)).astype(np.float64)
    p /= p.sum(1, keepdims=True)
    pt = p[np.arange(50), y]
    expected = np.log(pt + 1e-45) - np.log(p.sum(1) - pt + 1e-45)
    np.testing.assert_allclose(sc.logit_scaled_confidence(z, y), expected, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(sc.logit_scaled_confidence(z.astype(np.float64), y), expected,
                               atol=1e-5)


# ---------------------------------------------------------------- final score


def test_final_score_arithmetic():
    # F = 0.5, RA_U / RA_R = 0.85 / 0.85, TA_U / TA_R = 0.7 / 0.875 = 0.8.
    s = sc.final_score(0.5, [0.8, 0.9], 0.7, 0.85, np.array([0.875, 0.875]))
    assert s == pytest.approx(0.4, rel=1e-12)
    col = np.array([0.0, 1.0, 2.0, 3.0])[:, None]
    fq = sc.forget_quality(col, col)  # F = 1
    assert sc.final_score(fq, 0.9, 0.8, 0.9, 0.8) == pytest.approx(1.0)
    # Unclipped: better utility than the retrained models raises the score above F.
    assert sc.final_score(0.5, 1.0, 1.0, 0.5, 0.5) == pytest.approx(2.0)


# ---------------------------------------------------------------- float32 grid


def test_linspace_f32_matches_torch():
    torch = pytest.importorskip("torch")
    cap = torch.backends.cpu.get_cpu_capability()
    if cap not in ("AVX2", "AVX512", "DEFAULT"):
        pytest.skip(f"torch CPU capability {cap}: kernel flavour unknown")
    fma = cap != "DEFAULT"
    rng = np.random.default_rng(0)
    for _ in range(300):
        lo = rng.normal() * 10 ** rng.uniform(-1, 2)
        hi = lo + abs(rng.normal()) * 10 ** rng.uniform(-2, 2)
        steps = int(math.ceil((hi - lo) * 100))
        ref = torch.linspace(torch.tensor(lo, dtype=torch.float64),
                             torch.tensor(hi, dtype=torch.float64), steps).numpy()
        got = sc.linspace_f32(lo, hi, steps, fma=fma)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, ref)
    for steps in (0, 1, 2, 3):
        ref = torch.linspace(-1.3, 2.7, steps).numpy()
        np.testing.assert_array_equal(sc.linspace_f32(-1.3, 2.7, steps, fma=fma), ref)


def test_rates_match_torch_cuda_mean():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA: the scorer's rates are torch.mean on the GPU")
    gen = torch.Generator().manual_seed(0)
    for n in (2, 3, 41, 47, 100, 500, 512, 1000):
        for t in (1, 7, 400, 1234, 160_000, 160_400):
            x = (torch.rand(n, t, generator=gen) < torch.rand(1, t, generator=gen)).float()
            x[:, 0] = 1.0  # count N: the TPR = 1 case
            ref = torch.mean(x.cuda(), 0).cpu().numpy()
            got = sc._rates(x.sum(0).numpy().astype(np.int64), sc._mean_factor(n, t))
            np.testing.assert_array_equal(got, ref, err_msg=f"N={n} T={t}")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "u, r, match",
    [
        (np.zeros((4, 3)), np.zeros((4, 2)), "shapes differ"),
        (np.zeros((1, 3)), np.zeros((1, 3)), "at least 2 models"),
        (np.zeros(4), np.zeros(4), "2-D"),
        (np.zeros((4, 0)), np.zeros((4, 0)), "no forget examples"),
        (np.array([[0.0, np.nan]] * 3), np.zeros((3, 2)), "unlearned_confs: contains NaN"),
        (np.zeros((3, 2)), np.array([[0.0, np.inf]] * 3), "retrained_confs: contains NaN or inf"),
    ],
)
def test_forget_quality_rejects_bad_input(u, r, match):
    with pytest.raises(ValueError, match=match):
        sc.forget_quality(u, r)
    with pytest.raises(ValueError, match=match):
        sc.forget_quality_dense(u, r)


def test_epsilon_rejects_bad_columns():
    with pytest.raises(ValueError, match="u_col: need at least 2"):
        sc.epsilon_fast([1.0], [2.0])
    with pytest.raises(ValueError, match="shapes differ"):
        sc.epsilon_dense([1.0, 2.0], [2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="r_col: expected a 1-D"):
        sc.epsilon_fast([1.0, 2.0], [[2.0, 3.0]])


@pytest.mark.parametrize(
    "logits, targets, match",
    [
        (np.zeros(3), np.zeros(3, int), "logits: expected a 2-D"),
        (np.array([[0.0, np.nan]]), np.array([0]), "logits: contains NaN"),
        (np.zeros((2, 3)), np.array([0, 3]), r"targets: labels must lie in \[0, 3\)"),
        (np.zeros((2, 3)), np.array([0, -1]), "targets: labels"),
        (np.zeros((2, 3)), np.array([0]), "targets: expected shape"),
        (np.zeros((2, 3)), np.array([0.0, 1.0]), "targets: expected integer"),
    ],
)
def test_logit_scaled_confidence_rejects_bad_input(logits, targets, match):
    with pytest.raises(ValueError, match=match):
        sc.logit_scaled_confidence(logits, targets)


@pytest.mark.parametrize(
    "args, match",
    [
        ((float("nan"), 1, 1, 1, 1), "forget_quality: must be finite"),
        ((0.5, 1, 1, 0.0, 1), "retrained_retain_acc: must be > 0"),
        ((0.5, 1, 1, 1, [0.0, 0.0]), "retrained_test_acc: must be > 0"),
        ((0.5, 1.5, 1, 1, 1), "unlearned_retain_acc: accuracies must be finite and in"),
        ((0.5, 1, np.zeros((2, 2)), 1, 1), "unlearned_test_acc: expected a number"),
        (("x", 1, 1, 1, 1), "forget_quality: expected a number"),
    ],
)
def test_final_score_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        sc.final_score(*args)


def test_scoring_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, unlearnkit.metrics.competition; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
