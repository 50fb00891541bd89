"""Metrics of a set of models, computed from their cached outputs (:class:`Outputs`).

A set is the N runs of a method, an oracle set, or the single original. Two kinds:

- the competition's score of a set against the N references (:func:`score_against`),
  with the accuracies it needs (:func:`accuracies`);
- the secondary numbers papers report: per-class test accuracy for class removal, the
  starting kit's simple MIA on cross-entropy losses (for class removal against test
  examples of the forgotten classes: see :func:`mia_test_mask`), and ZRF against a
  randomly initialised network of the benchmark's architecture, in the paper's JS form
  and in the official code's form (:mod:`.secondary`).

Every function takes ``(entries: list[Outputs], ctx: Context, ...)``: the
context gives the labels and the split, never a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..benchmarks import Benchmark
from ..data.base import ImageSet, SourceData
from ..data.splits import Split
from ..train import init_model, predict_logits
from .competition import ForgetQuality, final_score, forget_quality, logit_scaled_confidence
from .intervals import ModelSet
from .secondary import cross_entropy_losses, simple_mia, zrf_js, zrf_official

MIA_MODELS = 8  # the MIA's logistic regressions are the slow part: at most this many models
RANDOM_SEED = 12345  # seed of the random network ZRF compares with (not a reference's seed)
RANDOM_INPUTS = ("standardized", "raw")




@dataclass
class Outputs:
    """What scoring needs from one model (one cache entry, :mod:`unlearnkit.harness.cache`)."""

    forget_logits: np.ndarray  # [S, C] float32
    test_logits: np.ndarray  # [T, C] float32
    retain_pred: np.ndarray  # [R] int16 predicted labels
    meta: dict  # seconds, seed, ...


class Context(Protocol):
    """What the metrics read of a benchmark made concrete (the harness's
    :class:`unlearnkit.harness.context.Context` is one): labels and the split, never a model."""

    bench: Benchmark
    source: SourceData
    split: Split
    parts: dict[str, ImageSet]  # retain, forget, validation, test, train


# ---------------------------------------------------------------- the competition's score


@dataclass
class Scored:
    """One set of N models scored against the references."""

    forget_quality: ForgetQuality
    score: float
    retain_acc: float
    test_acc: float
    forget_acc: float
    confs: np.ndarray  # [N, S] logit-scaled confidences on forget

    def to_json(self) -> dict:
        """The JSON-ready numbers of this set."""
        return {"forget_quality": self.forget_quality.score, "score": self.score,
                "retain_acc": self.retain_acc, "test_acc": self.test_acc,
                "forget_acc": self.forget_acc}


def confidences(entries: list[Outputs], forget_labels: np.ndarray) -> np.ndarray:
    """Logit-scaled confidences of every model on every forget example: [N, S]."""
    return np.stack([logit_scaled_confidence(e.forget_logits, forget_labels) for e in entries])


def accuracies(entries: list[Outputs], ctx: Context) -> dict[str, np.ndarray]:
    """Per-model retain, test and forget accuracy: each [N]."""
    labels = {k: ctx.parts[k].labels.numpy() for k in ("retain", "test", "forget")}
    return {
        "retain": np.array([(e.retain_pred == labels["retain"]).mean() for e in entries]),
        "test": np.array([(e.test_logits.argmax(1) == labels["test"]).mean() for e in entries]),
        "forget": np.array([(e.forget_logits.argmax(1) == labels["forget"]).mean()
                            for e in entries]),
    }


def model_set(entries: list[Outputs], ctx: Context, confs: np.ndarray) -> ModelSet:
    """What the bootstrap needs of a set: its confidences [N, S] and per-model accuracies."""
    acc = accuracies(entries, ctx)
    return ModelSet(confs, acc["retain"], acc["test"])


def score_against(unlearned: list[Outputs], refs: list[Outputs], ctx: Context,
                  ref_confs: np.ndarray | None = None) -> Scored:
    """The competition's score of ``unlearned`` against the references ``refs``."""
    y = ctx.parts["forget"].labels.numpy()
    u = confidences(unlearned, y)  # [N, S]
    r = confidences(refs, y) if ref_confs is None else ref_confs
    fq = forget_quality(u, r)
    acc_u, acc_r = accuracies(unlearned, ctx), accuracies(refs, ctx)
    score = final_score(fq, acc_u["retain"], acc_u["test"], acc_r["retain"], acc_r["test"])
    return Scored(fq, score, float(acc_u["retain"].mean()), float(acc_u["test"].mean()),
                  float(acc_u["forget"].mean()), u)


# ---------------------------------------------------------------- secondary metrics


def _check_entries(entries: list[Outputs]) -> None:
    """Raise when there is no model to measure."""
    if not entries:
        raise ValueError("no models given: pass at least one cache entry (Outputs)")


# ---------------------------------------------------------------- accuracy per class group


def class_accuracies(entries: list[Outputs], ctx: Context) -> dict[str, float] | None:
    """Mean test accuracy on the forgotten classes and on the kept ones (class removal).

    ``None`` for a sample-level split, where there are no forgotten classes.
    """
    _check_entries(entries)
    forget_classes = ctx.split.forget_classes
    if not forget_classes:
        return None
    labels = ctx.parts["test"].labels.numpy()  # [T]
    in_forget = np.isin(labels, forget_classes)  # [T] bool
    if in_forget.all() or not in_forget.any():
        raise ValueError(f"the test set must hold both forgotten classes {forget_classes} "
                         "and kept ones to split its accuracy; check the benchmark's source")
    hits = np.stack([e.test_logits.argmax(1) == labels for e in entries])  # [N, T] bool
    return {"forget_class_test": float(hits[:, in_forget].mean()),
            "retain_class_test": float(hits[:, ~in_forget].mean())}


# ---------------------------------------------------------------- membership inference


def mia_test_mask(ctx: Context) -> np.ndarray:
    """Which test examples the MIA uses as non-members: [T] bool.

    Sample-level: all of them (the starting kit's choice). Class removal: only those of
    the forgotten classes, so that a model that never saw those classes sits at 0.5 (with
    the whole test set, forget losses exceed test losses even for the retrain oracle).
    """
    labels = ctx.parts["test"].labels.numpy()  # [T]
    if not ctx.split.forget_classes:
        return np.ones(len(labels), dtype=bool)
    return np.isin(labels, ctx.split.forget_classes)


def mia(entries: list[Outputs], ctx: Context, max_models: int = MIA_MODELS,
        seed: int = 0) -> float:
    """The simple MIA (forget vs test CE losses), averaged over the first ``max_models``.

    0.5 = an attacker cannot tell forget examples from unseen ones; 1.0 = it always can.
    """
    _check_entries(entries)
    if max_models < 1:
        raise ValueError(f"max_models must be >= 1, got {max_models}")
    y_forget = ctx.parts["forget"].labels.numpy()  # [S]
    mask = mia_test_mask(ctx)  # [T]
    y_test = ctx.parts["test"].labels.numpy()[mask]
    scores = [
        simple_mia(cross_entropy_losses(e.forget_logits, y_forget),
                   cross_entropy_losses(e.test_logits[mask], y_test), seed=seed)
        for e in entries[:max_models]
    ]
    return float(np.mean(scores))


# ---------------------------------------------------------------- ZRF


def random_net_logits(ctx: Context, seed: int = RANDOM_SEED, device="cpu",
                      inputs: str = "standardized") -> np.ndarray:
    """Logits of a randomly initialised network of the benchmark's architecture on the
    forget set (eval mode): [S, C]. Compute once per benchmark and pass to :func:`zrf`.

    ``inputs='standardized'`` feeds ``(x - 127.5) / 64``, as the Bad Teacher method does
    for its random teacher: at that scale a random net's outputs are spread out, as on the
    paper's normalised inputs; on raw 0-255 pixels they are near one-hot.
    """
    if inputs not in RANDOM_INPUTS:
        raise ValueError(f"inputs must be one of {RANDOM_INPUTS}, got {inputs!r}")
    forget = ctx.parts["forget"]
    if inputs == "standardized":
        forget = ImageSet((forget.images - 127.5) / 64.0, forget.labels)
    net = init_model(ctx.bench.model, seed, ctx.source.num_classes)
    return predict_logits(net, forget, device=device)


def zrf(entries: list[Outputs], random_logits: np.ndarray) -> dict[str, float]:
    """Mean ZRF of the models on the forget set, both variants (1 = looks random).

    ``js``: the paper's formula, 1 - mean JS divergence per example; ``official``: the
    Bad Teacher code's (reversed KL, averaged over classes too, so nearer 1).
    """
    _check_entries(entries)
    rand = np.asarray(random_logits)  # [S, C]
    if rand.shape != entries[0].forget_logits.shape:
        raise ValueError(f"random_logits has shape {rand.shape} but the models' forget logits "
                         f"have {entries[0].forget_logits.shape}; compute them on the same "
                         "forget set (random_net_logits)")
    js = [zrf_js(e.forget_logits, rand, logits=True) for e in entries]
    official = [zrf_official(e.forget_logits, rand, logits=True) for e in entries]
    return {"js": float(np.mean(js)), "official": float(np.mean(official))}


# ---------------------------------------------------------------- all of them


def secondary_metrics(entries: list[Outputs], ctx: Context, random_logits: np.ndarray,
                      max_mia_models: int = MIA_MODELS) -> dict:
    """Every secondary metric of one set of models, JSON-ready (None = not applicable)."""
    z = zrf(entries, random_logits)
    classes = class_accuracies(entries, ctx) or {"forget_class_test": None,
                                                 "retain_class_test": None}
    return {"zrf_js": z["js"], "zrf_official": z["official"],
            "mia": mia(entries, ctx, max_mia_models),
            "mia_models": min(len(entries), max_mia_models), **classes}
