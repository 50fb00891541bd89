"""The competition's forget quality and final score, exact and fast (numpy only).

Reproduces the open-sourced scorer (google-deepmind/unlearning_evaluation, metric.py)
as specified by the organisers (docs/scoring.md), bit for bit where the scorer is deterministic:
float32 rates, the float32 torch.linspace grid, float32 epsilons. Two implementations:

- ``epsilon_dense``: every (model, threshold) pair compared in [N, T] matrices, as the
  scorer does; slow, used as the test oracle;
- ``epsilon_fast``: both columns merged and sorted once, every threshold's counts found
  with ``np.searchsorted``, and epsilons looked up in a cached table indexed by
  (true positives, false positives); with few models only the distinct counts of the
  interval family's left edges are scored. Same epsilons, 20 to 140 times faster.

Checked against a transcription of the scorer run on CUDA (H200): identical epsilons and
F for N = 16, 41, 100, 512 (docs/scoring.md).

Choices where the spec is silent, each taken from what the scorer's code does:

- rates follow the scorer's CUDA ``torch.mean``: ``fl32(count * factor)`` with
  ``factor = fl32(fl32(T) / fl32(N * T))`` for T thresholds. For N = 512 (any power of
  two) this equals ``count / N``. For some N (41, 47, 55, ...) ``N * factor`` rounds
  below 1, so TPR + TNR != 2 and perfectly separating thresholds are discarded rather
  than scored +inf, exactly as the scorer does;
- the float32 grid reproduces torch's CPU linspace kernel on an AVX2/AVX512 CPU, which
  contracts ``start + step * i`` into one fused multiply-add (``fma=False`` gives the
  unfused variant torch uses on CPUs without AVX2);
- both ranges zero: ``0 / 0`` is NaN, so the 1% rule does not fire; the thresholds go on;
- ``ceil(...) = 0`` thresholds (hi == lo): that family contributes no threshold;
- a threshold with FPR = FNR = 1 makes both log terms NaN; the scorer's ``nanmax`` then
  gives NaN and the threshold is dropped like a discarded one;
- no threshold kept (e.g. both sides one identical constant): the scorer's
  ``assert thr_eps`` (intent: ``assert len(thr_eps)``) fails. We raise
  ``NoThresholdKeptError`` (a ValueError) unless ``empty_eps`` gives a value to use;
- N = 2: ``max_eps = ceil(ln 1) = 0``, no buckets, so F = 0 whatever the epsilons.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

TIME_RULE = 0.2  # the competition's intent: an unlearning run costs <= 20% of a retrain

DELTA = 1e-5
EPSILON_CAP = 50.0
THRESHOLDS_PER_UNIT = 100
BUFFER = 2.0
NUM_LEFT = 400  # ceil(2 * BUFFER * THRESHOLDS_PER_UNIT) left edges per right edge
RANGE_RATIO = 0.01
BUCKET = 0.5
_F32 = np.float32
_ONE_MINUS_DELTA = _F32(1 - DELTA)  # the scorer's `1 - delta - fpr` on a float32 array


class NoThresholdKeptError(ValueError):
    """Every threshold of an example was discarded (the scorer's assert fails here)."""


@dataclass(frozen=True, eq=False)
class ForgetQuality:
    """Forget quality F and what it was made of."""

    score: float
    """F: mean points over forget examples, in [0, 1]."""
    epsilons: np.ndarray
    """Per-example epsilon in [0, 50], float32. # [S]"""
    points: np.ndarray
    """Per-example points, 2^-k for bucket k or 0. # [S]"""
    num_models: int
    """N, the number of models on each side."""
    max_eps: int
    """ceil(ln(N - 1)): epsilons at or above it earn 0 points."""
    bucket_edges: np.ndarray
    """0, 0.5, ..., max_eps: the bucket boundaries."""


# ---------------------------------------------------------------- confidences


def logit_scaled_confidence(logits, targets) -> np.ndarray:
    """Logit-scaled confidence log p_y - log sum_{c != y} p_c of each row. # [n]

    Follows the scorer: ``logits - max`` and ``exp`` in the logits' own dtype when it is
    float32 or float64 (the scorer's ``np.exp`` runs in float32 on float32 logits), then
    normalisation and logs in float64. Other dtypes are converted to float64 first.
    """
    z = np.asarray(logits)
    if z.dtype not in (np.float32, np.float64):
        z = z.astype(np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits: expected a 2-D array [n, classes], got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits: contains NaN or inf")
    y = _check_targets(targets, z.shape[0], z.shape[1])
    rows = np.arange(z.shape[0])
    p = np.array(np.exp(z - z.max(axis=1, keepdims=True)), dtype=np.float64)  # [n, C]
    p /= p.sum(axis=1, keepdims=True)
    p_true = p[rows, y].copy()
    p[rows, y] = 0
    p_wrong = p.sum(axis=1)
    return np.log(p_true + 1e-45) - np.log(p_wrong + 1e-45)


def _check_targets(targets, n: int, num_classes: int) -> np.ndarray:
    """Integer labels [n] in [0, num_classes), or ValueError."""
    y = np.asarray(targets)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"targets: expected shape ({n},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"targets: expected integer labels, got dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"targets: labels must lie in [0, {num_classes}), got {y.min()}..{y.max()}")
    return y


# ---------------------------------------------------------------- grids and rates


def linspace_f32(lo: float, hi: float, steps: int, fma: bool = True) -> np.ndarray:
    """torch.linspace(lo, hi, steps) in float32, bit for bit (torch's CPU kernel).

    The kernel computes ``start + step * i`` for the first half and
    ``end - step * (steps - i - 1)`` for the rest, in float32; on AVX2/AVX512 CPUs the
    compiler fuses each into one FMA (one rounding), which ``fma=True`` reproduces.
    """
    if steps <= 0:
        return np.empty(0, _F32)
    start, end = _F32(lo), _F32(hi)
    if steps == 1:
        return np.array([start], _F32)
    step = _F32(end - start) / _F32(steps - 1)
    half = steps // 2
    idx = np.arange(steps)
    k = np.where(idx < half, idx, steps - idx - 1).astype(_F32)  # [steps]
    mult = np.where(idx < half, step, -step).astype(_F32)
    base = np.where(idx < half, start, end).astype(_F32)
    if fma:
        return _fma_f32(mult, k, base)
    return (base + mult * k).astype(_F32)


def _fma_f32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 a * b + c with a single rounding.

    The product of two float32 is exact in float64; the float64 sum is rounded to odd
    (inexact sums get an odd last bit), which makes the final float32 rounding correct.
    """
    p = a.astype(np.float64) * b.astype(np.float64)
    c = c.astype(np.float64)
    s = p + c
    bv = s - p
    err = (p - (s - bv)) + (c - bv)  # TwoSum: s + err == p + c exactly
    even = (s.view(np.int64) & 1) == 0
    s = np.where((err != 0) & even, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(_F32)


def _mean_factor(n_models: int, n_thresholds: int) -> np.float32:
    """The scorer's CUDA mean factor fl32(fl32(T) / fl32(N * T))."""
    return _F32(n_thresholds) / _F32(n_models * n_thresholds)


def _rates(count, factor: np.float32) -> np.ndarray:
    """CUDA torch.mean of 0/1 over models: fl32(count * factor). # like count"""
    return np.asarray(count).astype(_F32) * factor


def _threshold_eps(tpr, fnr, fpr, tnr) -> np.ndarray:
    """Per-threshold epsilon (float32): +inf perfect, NaN discarded, else the formula."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(_ONE_MINUS_DELTA - fpr) - np.log(fnr)
        b = np.log(_ONE_MINUS_DELTA - fnr) - np.log(fpr)
        eps = np.clip(np.fmax(a, b), 0, None)  # fmax == the scorer's nanmax of the pair
    perfect = ((fpr + fnr) == 0) & ((tpr + tnr) == 2)
    discarded = ~perfect & ((fpr * fnr) == 0)
    eps = np.where(perfect, _F32(np.inf), eps)
    return np.where(discarded, _F32(np.nan), eps).astype(_F32)


@lru_cache(maxsize=64)
def _eps_table(n_models: int, factor: np.float32) -> np.ndarray:
    """Epsilon of every (TP count, FP count) pair; -1 marks a dropped threshold.

    Returned flat: entry tp * (N + 1) + fp. # [(N+1)^2]
    """
    tp, fp = np.divmod(np.arange((n_models + 1) ** 2), n_models + 1)
    eps = _threshold_eps(
        _rates(tp, factor),
        _rates(n_models - tp, factor),
        _rates(fp, factor),
        _rates(n_models - fp, factor),
    )
    eps = np.where(np.isnan(eps), _F32(-1), eps)
    eps.flags.writeable = False
    return eps


# ---------------------------------------------------------------- per example


def _sides(u_col: np.ndarray, r_col: np.ndarray):
    """(positive, negative) by median: R positive iff median(R) > median(U)."""
    if np.median(r_col) > np.median(u_col):
        return r_col, u_col
    return u_col, r_col


def _range_rule(pos: np.ndarray, neg: np.ndarray) -> bool:
    """True when smaller range / larger range < 1% (eps = cap). 0/0 is NaN: False."""
    pos_diff, neg_diff = pos.max() - pos.min(), neg.max() - neg.min()
    largest = pos_diff if pos_diff > neg_diff else neg_diff
    smallest = neg_diff if pos_diff > neg_diff else pos_diff
    with np.errstate(divide="ignore", invalid="ignore"):
        return bool(np.float64(smallest) / np.float64(largest) < RANGE_RATIO)


def _single_grid(pos: np.ndarray, neg: np.ndarray, fma: bool) -> np.ndarray:
    """Single thresholds: ceil((hi - lo) * 100) float32 points from lo to hi. # [T]"""
    lo, hi = min(pos.min(), neg.min()), max(pos.max(), neg.max())
    return linspace_f32(lo, hi, int(math.ceil((hi - lo) * THRESHOLDS_PER_UNIT)), fma)


def _interval_grid(pos: np.ndarray, neg: np.ndarray):
    """Right edges of the interval family around the peakier side.

    Returns (peaky side, wide side, right edges [R] (float64), width).
    """
    pos_diff, neg_diff = pos.max() - pos.min(), neg.max() - neg.min()
    width = neg_diff if pos_diff > neg_diff else pos_diff
    if pos_diff >= neg_diff:  # equal ranges: the originally negative side is positive
        pos, neg = neg, pos
    lo = pos.min() + width - BUFFER
    hi = pos.max() + BUFFER
    right = np.linspace(lo, hi, num=int(np.ceil((hi - lo) * THRESHOLDS_PER_UNIT)))
    return pos, neg, right, width


def _finish(best: float, empty_eps: float | None) -> np.float32:
    """Clip to [0, cap]; handle 'no threshold kept' (best is NaN)."""
    if np.isnan(best):
        if empty_eps is None:
            raise NoThresholdKeptError(
                "no threshold kept for this example (both sides constant and equal?); "
                "the published scorer fails its assert here; pass empty_eps to score it"
            )
        best = empty_eps
    return _F32(min(max(best, 0.0), EPSILON_CAP))


def epsilon_dense(u_col, r_col, *, fma: bool = True, empty_eps: float | None = None) -> np.float32:
    """Epsilon of one example, comparing every model with every threshold (the oracle)."""
    u_col, r_col = _check_column(u_col, "u_col"), _check_column(r_col, "r_col")
    _same_shape(u_col, r_col, "u_col", "r_col")
    pos, neg = _sides(u_col, r_col)
    if _range_rule(pos, neg):
        return _F32(EPSILON_CAP)
    n = pos.shape[0]
    eps = []
    t = _single_grid(pos, neg, fma).astype(np.float64)[None, :]  # [1, T]
    if t.shape[1]:
        f = _mean_factor(n, t.shape[1])
        pp_pos, pp_neg = pos[:, None] >= t, neg[:, None] >= t  # [N, T]
        eps.append(_threshold_eps(
            _rates(pp_pos.sum(0), f), _rates((pos[:, None] < t).sum(0), f),
            _rates(pp_neg.sum(0), f), _rates((neg[:, None] < t).sum(0), f),
        ))
    peaky, wide, right, width = _interval_grid(pos, neg)
    if right.size:
        f = _mean_factor(n, right.size * NUM_LEFT)
        for r in right:  # one right edge at a time: [N, 400] matrices
            lefts = np.linspace(r - width - BUFFER, r - width + BUFFER, num=NUM_LEFT)
            in_p = (lefts[None, :] <= peaky[:, None]) & (peaky[:, None] <= r)
            in_w = (lefts[None, :] <= wide[:, None]) & (wide[:, None] <= r)
            eps.append(_threshold_eps(
                _rates(in_p.sum(0), f), _rates((~in_p).sum(0), f),
                _rates(in_w.sum(0), f), _rates((~in_w).sum(0), f),
            ))
    kept = np.concatenate(eps) if eps else np.empty(0, _F32)
    kept = kept[~np.isnan(kept)]
    return _finish(float(kept.max()) if kept.size else float("nan"), empty_eps)


def epsilon_fast(u_col, r_col, *, fma: bool = True, empty_eps: float | None = None) -> np.float32:
    """Epsilon of one example, counting with sorted columns and binary search."""
    u_col, r_col = _check_column(u_col, "u_col"), _check_column(r_col, "r_col")
    _same_shape(u_col, r_col, "u_col", "r_col")
    return _epsilon_fast(u_col, r_col, fma, empty_eps)


def _epsilon_fast(u_col, r_col, fma: bool, empty_eps: float | None) -> np.float32:
    """epsilon_fast without the input checks.

    A threshold's (TP, FP) counts are encoded as ``tp * (N + 1) + fp`` and looked up in
    the epsilon table; ``-1`` there marks a dropped threshold.
    """
    pos, neg = _sides(u_col, r_col)
    if _range_rule(pos, neg):
        return _F32(EPSILON_CAP)
    n = pos.shape[0]
    values, below_pos, below_neg = _merge(pos, neg)
    best = -1.0
    t = _single_grid(pos, neg, fma).astype(np.float64)  # [T]
    if t.size:
        key = _single_keys(values, below_pos, below_neg, t)
        best = max(best, float(_eps_table(n, _mean_factor(n, t.size))[key].max()))
    peaky, _, right, width = _interval_grid(pos, neg)
    if right.size:
        b_peaky, b_wide = (below_pos, below_neg) if peaky is pos else (below_neg, below_pos)
        table = _eps_table(n, _mean_factor(n, NUM_LEFT * right.size))
        best = max(best, _interval_best(values, b_peaky, b_wide, right, width, table))
    return _finish(best if best >= 0 else float("nan"), empty_eps)


def _interval_best(values, below_peaky, below_wide, right, width, table) -> float:
    """The largest table entry over the interval family's 400 * R thresholds (-1: none).

    Left edges ``np.linspace(right - width - BUFFER, right - width + BUFFER, 400)``; a
    left edge > its right edge gives a key <= 0, clipped to entry 0 = (0, 0), dropped.
    With few models (2N + 1 < 200) only the distinct left counts are scored: a left
    edge's count of confidences below it takes at most 2N + 1 values per right edge
    (:func:`_left_counts_seen`), so [2N+1, R] keys replace [400, R] binary searches.
    """
    shifted = right - width
    start, stop = shifted - BUFFER, shifted + BUFFER
    n = below_peaky[-1]
    code = below_peaky * (n + 1) + below_wide  # [2N+1]
    if values.size + 1 >= NUM_LEFT // 2:  # many models: binary search every left edge
        left = np.linspace(start, stop, num=NUM_LEFT)  # [400, R]
        key = _interval_keys(values, below_peaky, below_wide, left, right)
        return float(table.take(key, mode="clip").max())
    upto_right = code[np.searchsorted(values, right, "right")]  # [R] confs <= right
    key = upto_right[None, :] - code[:, None]  # [2N+1, R]: minus the i confs < left
    eps = table.take(key, mode="clip")
    return float(np.where(_left_counts_seen(values, start, stop), eps, -1).max())


def _left_counts_seen(values, start, stop) -> np.ndarray:
    """[2N+1, R]: whether some left edge j of right edge r has exactly i values < it.

    ``searchsorted(values, left, "left") == i`` iff values[i-1] < left <= values[i], so
    i occurs iff the count of edges <= values[i] exceeds the count <= values[i-1].
    """
    le = _edges_at_or_below(values, start, stop)  # [2N, R]
    r = start.shape[0]
    counts = np.concatenate([np.zeros((1, r), np.int64), le, np.full((1, r), NUM_LEFT)])
    return np.diff(counts, axis=0) > 0


def _left_edge(j, start, step, stop) -> np.ndarray:
    """``np.linspace(start, stop, NUM_LEFT)[j]`` bit for bit (j: float, 0..NUM_LEFT-1):
    numpy's j * step + start, the last edge set to ``stop`` (checked in the tests)."""
    edge = j * step + start
    last = j == NUM_LEFT - 1
    return np.where(last, stop, edge) if last.any() else edge


def _edges_at_or_below(values, start, stop) -> np.ndarray:
    """[K, R]: how many of right edge r's left edges are <= values[k].

    An arithmetic guess, then exact steps: the edges rise with j, so moving j down while
    edge j-1 > v and up while edge j <= v ends at the exact count."""
    step = (stop - start) / (NUM_LEFT - 1)  # numpy's linspace step
    v = values[:, None]
    j = np.floor((v - start) / step) + 1
    np.clip(j, 0, NUM_LEFT, out=j)
    while True:
        down = (j > 0) & (_left_edge(np.maximum(j - 1, 0), start, step, stop) > v)
        up = (j < NUM_LEFT) & (_left_edge(np.minimum(j, NUM_LEFT - 1), start, step, stop) <= v)
        if not (down.any() or up.any()):
            return j.astype(np.int64)
        j += up
        j -= down


def _merge(a: np.ndarray, b: np.ndarray):
    """Both sides sorted together, and how many of each lie among the first i values.

    Returns (values [2N], below_a [2N+1], below_b [2N+1]): for any x,
    ``i = searchsorted(values, x, "left")`` makes below_a[i] the count of a < x
    (``"right"``: a <= x).
    """
    merged = np.concatenate([a, b])  # [2N]
    order = np.argsort(merged, kind="stable")
    below_a = np.concatenate([[0], np.cumsum(order < a.shape[0])])
    return merged[order], below_a, np.arange(merged.shape[0] + 1) - below_a


def _single_keys(values, below_pos, below_neg, t) -> np.ndarray:
    """Keys tp * (N + 1) + fp of 'positive iff conf >= t'. # like t"""
    n = below_pos[-1]
    i = np.searchsorted(values, t, "left")  # confidences < t
    return (n - below_pos[i]) * (n + 1) + (n - below_neg[i])


def _interval_keys(values, below_pos, below_neg, left, right) -> np.ndarray:
    """Keys tp * (N + 1) + fp of 'positive iff left <= conf <= right'. # like left

    The key is linear in the counts, so key(right) - key(left) counts the interval;
    ``left`` broadcasts against ``right`` (here [400, R] against [R]). An empty interval
    (left > right) gives a key <= 0.
    """
    n = below_pos[-1]
    code = below_pos * (n + 1) + below_neg  # [2N+1]
    upto_right = code[np.searchsorted(values, right, "right")]  # confs <= right
    return upto_right - code[np.searchsorted(values, left, "left")]  # minus confs < left


# ---------------------------------------------------------------- forget quality


def bucket_edges(num_models: int) -> np.ndarray:
    """0, 0.5, ..., max_eps: the 2 * max_eps score buckets' boundaries."""
    return np.arange(2 * max_epsilon(num_models) + 1) * BUCKET


def max_epsilon(num_models: int) -> int:
    """ceil(ln(N - 1)): 7 for N = 512, 3 for N = 16."""
    return int(np.ceil(np.log(num_models - 1)))


def epsilon_points(epsilons, num_models: int) -> np.ndarray:
    """Points of each epsilon: 2^-k in bucket k = [k/2, k/2 + 1/2), 0 past max_eps."""
    eps = np.asarray(epsilons, dtype=np.float64)
    k = np.floor(eps / BUCKET)  # first bucket whose end is > eps
    return np.where(k < 2 * max_epsilon(num_models), np.exp2(-k), 0.0)


def forget_quality(
    unlearned_confs,
    retrained_confs,
    *,
    workers: int = 1,
    progress: bool = False,
    fma: bool = True,
    empty_eps: float | None = None,
) -> ForgetQuality:
    """Forget quality F from two [N models, S examples] confidence matrices (fast path).

    ``workers`` > 1 scores examples in threads (numpy's searchsorted and sort run
    without the GIL); ``progress`` shows a tqdm bar over examples. ``empty_eps``: the
    epsilon of an example with no threshold kept (default: raise NoThresholdKeptError).
    """
    u, r = _check_confs(unlearned_confs, retrained_confs)

    def one(i: int) -> np.float32:
        try:
            return _epsilon_fast(u[:, i], r[:, i], fma, empty_eps)
        except NoThresholdKeptError as e:
            raise NoThresholdKeptError(f"example {i}: {e}") from None

    return _summarise(_map(one, u.shape[1], workers, progress), u.shape[0])


def forget_quality_dense(unlearned_confs, retrained_confs, *, fma: bool = True,
                         empty_eps: float | None = None) -> ForgetQuality:
    """Forget quality F with the dense per-example oracle (slow; for tests and benches)."""
    u, r = _check_confs(unlearned_confs, retrained_confs)
    eps = [epsilon_dense(u[:, i], r[:, i], fma=fma, empty_eps=empty_eps)
           for i in range(u.shape[1])]
    return _summarise(eps, u.shape[0])


def _map(fn, count: int, workers: int, progress: bool) -> list:
    """[fn(i) for i in range(count)], in threads and with a progress bar if asked."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=count, desc="forget quality", unit="ex")
    out = []
    try:
        if workers <= 1:
            for i in range(count):
                out.append(fn(i))
                if bar is not None:
                    bar.update(1)
        else:
            with ThreadPoolExecutor(workers) as pool:
                for e in pool.map(fn, range(count), chunksize=16):
                    out.append(e)
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out


def _summarise(epsilons, num_models: int) -> ForgetQuality:
    """Bucket the epsilons into points and average them."""
    eps = np.clip(np.asarray(epsilons, dtype=_F32), 0, EPSILON_CAP)  # [S]
    points = epsilon_points(eps, num_models)
    return ForgetQuality(
        score=float(points.sum() / eps.shape[0]),
        epsilons=eps,
        points=points,
        num_models=num_models,
        max_eps=max_epsilon(num_models),
        bucket_edges=bucket_edges(num_models),
    )


# ---------------------------------------------------------------- final score


def final_score(forget_quality, unlearned_retain_acc, unlearned_test_acc,
                retrained_retain_acc, retrained_test_acc) -> float:
    """F * (RA_U / RA_R) * (TA_U / TA_R), unclipped.

    ``forget_quality`` is a ForgetQuality or a float; each accuracy is a per-model array
    (its mean is used) or already a mean.
    """
    f = forget_quality.score if isinstance(forget_quality, ForgetQuality) else forget_quality
    f = _finite_scalar(f, "forget_quality")
    ra_u = _mean_acc(unlearned_retain_acc, "unlearned_retain_acc")
    ta_u = _mean_acc(unlearned_test_acc, "unlearned_test_acc")
    ra_r = _mean_acc(retrained_retain_acc, "retrained_retain_acc", positive=True)
    ta_r = _mean_acc(retrained_test_acc, "retrained_test_acc", positive=True)
    return f * (ra_u / ra_r) * (ta_u / ta_r)


def _finite_scalar(x, name: str) -> float:
    """float(x), or ValueError if not a finite number."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {type(x).__name__}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {v}")
    return v


def _mean_acc(acc, name: str, positive: bool = False) -> float:
    """Mean of an accuracy array or scalar in [0, 1] (> 0 where it is a divisor)."""
    a = np.asarray(acc, dtype=np.float64)
    if a.ndim > 1 or a.size == 0:
        raise ValueError(f"{name}: expected a number or a 1-D per-model array, got shape {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any() or (a > 1).any():
        raise ValueError(f"{name}: accuracies must be finite and in [0, 1]")
    m = float(a.mean())
    if positive and m <= 0:
        raise ValueError(f"{name}: must be > 0 (it divides the score), got {m}")
    return m


# ---------------------------------------------------------------- input checks


def _check_column(col, name: str) -> np.ndarray:
    """A finite 1-D float64 column of at least 2 models."""
    c = np.asarray(col, dtype=np.float64)
    if c.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D column [N models], got shape {c.shape}")
    if c.shape[0] < 2:
        raise ValueError(f"{name}: need at least 2 models, got {c.shape[0]}")
    if not np.isfinite(c).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return c


def _same_shape(a: np.ndarray, b: np.ndarray, na: str, nb: str) -> None:
    """ValueError unless a and b have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"{na} and {nb}: shapes differ, {a.shape} vs {b.shape}")


def _check_confs(unlearned, retrained):
    """Two finite float64 [N >= 2, S >= 1] matrices of the same shape."""
    out = []
    for x, name in ((unlearned, "unlearned_confs"), (retrained, "retrained_confs")):
        a = np.asarray(x, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"{name}: expected a 2-D array [N models, S examples], got shape {a.shape}")
        if a.shape[0] < 2:
            raise ValueError(f"{name}: need at least 2 models, got {a.shape[0]}")
        if a.shape[1] < 1:
            raise ValueError(f"{name}: no forget examples")
        if not np.isfinite(a).all():
            raise ValueError(f"{name}: contains NaN or inf")
        out.append(a)
    _same_shape(out[0], out[1], "unlearned_confs", "retrained_confs")
    return out[0], out[1]
