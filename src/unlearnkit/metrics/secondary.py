"""Secondary metrics of one model's outputs: cross-entropy losses, the simple MIA, ZRF.

None of these is the competition's score (see :mod:`unlearnkit.metrics.competition`);
they are the numbers papers and the starting kit report beside it. All take numpy arrays
(torch CPU tensors work too, through ``np.asarray``).
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------- losses


def cross_entropy_losses(logits, targets) -> np.ndarray:
    """Per-example cross-entropy -log softmax(z)[y], float64. # [n]"""
    z, y = _logits_targets(logits, targets)
    z = z.astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]  # logsumexp
    return log_norm - z[np.arange(z.shape[0]), y]


def _logits_targets(logits, targets):
    """Finite 2-D logits [n, C] and integer targets [n] in [0, C), or ValueError."""
    z = np.asarray(logits)
    if z.ndim != 2:
        raise ValueError(f"logits: expected a 2-D array [n, classes], got shape {z.shape}")
    if z.shape[0] == 0:
        raise ValueError("logits: no rows")
    if not np.issubdtype(z.dtype, np.number) or not np.isfinite(z).all():
        raise ValueError("logits: must be finite numbers (NaN or inf found)")
    y = np.asarray(targets)
    if y.ndim != 1 or y.shape[0] != z.shape[0]:
        raise ValueError(f"targets: expected shape ({z.shape[0]},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"targets: expected integer labels, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"targets: labels must lie in [0, {z.shape[1]}), got {y.min()}..{y.max()}")
    return z, y


# ---------------------------------------------------------------- membership inference


def simple_mia(forget_losses, test_losses, n_splits: int = 10, seed: int = 0) -> float:
    """The starting kit's MIA: mean accuracy of a logistic regression on losses.

    Forget examples are members (1), test examples non-members (0). The larger side is
    subsampled (seeded) to the smaller one's size, as the kit does, then
    ``cross_val_score`` runs over ``StratifiedShuffleSplit(n_splits)`` (10% held out).
    0.5 = the attacker cannot tell forget from test; 1.0 = it always can.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score

    forget = _losses(forget_losses, "forget_losses")
    test = _losses(test_losses, "test_losses")
    rng = np.random.default_rng(seed)
    k = min(forget.size, test.size)
    forget = forget[rng.permutation(forget.size)[:k]]
    test = test[rng.permutation(test.size)[:k]]
    x = np.concatenate([test, forget])[:, None]  # [2k, 1]
    y = np.concatenate([np.zeros(k, int), np.ones(k, int)])
    cv = StratifiedShuffleSplit(n_splits=n_splits, random_state=seed)
    return float(cross_val_score(LogisticRegression(), x, y, cv=cv, scoring="accuracy").mean())


def _losses(losses, name: str) -> np.ndarray:
    """Finite 1-D losses with at least 5 entries (so every split has both classes)."""
    a = np.asarray(losses, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of per-example losses, got shape {a.shape}")
    if a.size < 5:
        raise ValueError(f"{name}: need at least 5 losses, got {a.size}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return a


# ---------------------------------------------------------------- ZRF


def zrf_js(model_probs, random_probs, *, logits: bool = False) -> float:
    """ZRF as in the Bad Teacher paper: 1 - mean over examples of JS(model, random).

    JS(p, q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2, natural log, so the
    score lies in [1 - ln 2, 1]; 1 = the model's outputs equal the random teacher's.
    Inputs are [n, C] probabilities, or logits with ``logits=True``.
    """
    p, q = _prob_pair(model_probs, random_probs, logits)
    m = (p + q) / 2
    js = 0.5 * _kl_rows(p, m) + 0.5 * _kl_rows(q, m)  # [n]
    return float(1.0 - js.mean())


def zrf_official(model_probs, random_probs, *, logits: bool = False) -> float:
    """ZRF as the Bad Teacher code computes it (not the paper's formula).

    The code calls ``F.kl_div(log p, m)`` (KL(m || p): the reversed direction) with
    PyTorch's default 'mean' reduction, which averages over classes as well as examples:
    1 - mean_{n,c}[m log(m/p)] / 2 - mean_{n,c}[m log(m/q)] / 2. This pulls values toward
    1 by a factor of the class count; report which variant a number uses.
    """
    p, q = _prob_pair(model_probs, random_probs, logits)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_mp = np.where(m > 0, m * (np.log(m) - np.log(p)), 0.0)  # [n, C]
        kl_mq = np.where(m > 0, m * (np.log(m) - np.log(q)), 0.0)
    return float(1.0 - (0.5 * kl_mp.mean() + 0.5 * kl_mq.mean()))


def _kl_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """KL(a || b) per row, with 0 log 0 = 0. # [n]"""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(a > 0, a * (np.log(a) - np.log(b)), 0.0)
    return terms.sum(axis=1)


def _prob_pair(a, b, logits: bool):
    """Two [n, C] probability arrays of the same shape (softmax first if logits)."""
    out = []
    for x, name in ((a, "model_probs"), (b, "random_probs")):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"{name}: expected a non-empty 2-D array [n, classes], got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{name}: contains NaN or inf")
        if logits:
            x = np.exp(x - x.max(axis=1, keepdims=True))
            x /= x.sum(axis=1, keepdims=True)
        elif (x < 0).any() or not np.allclose(x.sum(axis=1), 1.0, atol=1e-4):
            raise ValueError(f"{name}: rows must be probabilities summing to 1 (pass logits=True for logits)")
        out.append(x)
    if out[0].shape != out[1].shape:
        raise ValueError(f"model_probs and random_probs: shapes differ, {out[0].shape} vs {out[1].shape}")
    return out[0], out[1]
