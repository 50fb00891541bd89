"""Metrics of model sets (unlearnkit.metrics.model_sets) on hand-made outputs (no training: fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearnkit.benchmarks import Benchmark
from unlearnkit.data.base import ImageSet, SourceData
from unlearnkit.data.splits import Split
from unlearnkit.harness.context import Context
from unlearnkit.metrics import model_sets
from unlearnkit.metrics.model_sets import Outputs

C = 4  # classes
FORGET_CLASSES = [0]


def image_set(labels: np.ndarray, seed: int) -> ImageSet:
    """Random 0-255 images with the given labels."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(len(labels), 3, 32, 32, generator=g) * 255  # [n, 3, 32, 32]
    return ImageSet(images, torch.as_tensor(labels, dtype=torch.int64))


def make_ctx(forget_classes: list[int], tmp_path) -> Context:
    """A context of 40 forget, 40 retain and 80 test examples (20 per class)."""
    test_y = np.repeat(np.arange(C), 20)  # [80]
    forget_y = np.repeat(forget_classes or [1], 40)  # [40]
    retain_y = np.repeat([c for c in range(C) if c not in forget_classes], 40)[:40]
    parts = {"forget": image_set(forget_y, 1), "retain": image_set(retain_y, 2),
             "test": image_set(test_y, 3), "validation": image_set(test_y[:4], 4)}
    source = SourceData("toy", parts["retain"], parts["test"], [f"c{i}" for i in range(C)])
    split = Split("class:0" if forget_classes else "random:0.1", 0, np.arange(40),
                  np.arange(40), np.arange(0), np.arange(80), forget_classes)
    return Context(Benchmark("toy", model="small_cnn"), source, split, parts, tmp_path)


def one_hot_logits(pred: np.ndarray, scale: float = 10.0) -> np.ndarray:
    """Logits [n, C] whose argmax is ``pred``."""
    z = np.zeros((len(pred), C), np.float32)
    z[np.arange(len(pred)), pred] = scale
    return z


def entry(ctx: Context, forget_logits, test_logits) -> Outputs:
    return Outputs(np.asarray(forget_logits, np.float32), np.asarray(test_logits, np.float32),
                   np.zeros(len(ctx.parts["retain"]), np.int16), {})


@pytest.fixture()
def class_ctx(tmp_path):
    return make_ctx(FORGET_CLASSES, tmp_path)


@pytest.fixture()
def sample_ctx(tmp_path):
    return make_ctx([], tmp_path)


def test_class_accuracies_split_forgotten_and_kept(class_ctx):
    y = class_ctx.parts["test"].labels.numpy()
    wrong_on_forgotten = np.where(y == 0, 1, y)  # right on kept classes, wrong on class 0
    half_right = np.where(np.arange(len(y)) % 2 == 0, y, (y + 1) % C)
    entries = [entry(class_ctx, one_hot_logits(np.zeros(40, int)), one_hot_logits(p))
               for p in (wrong_on_forgotten, half_right)]
    acc = model_sets.class_accuracies(entries, class_ctx)
    assert acc["forget_class_test"] == pytest.approx(0.25)  # (0 + 0.5) / 2
    assert acc["retain_class_test"] == pytest.approx(0.75)  # (1 + 0.5) / 2


def test_class_accuracies_none_for_sample_level(sample_ctx):
    y = sample_ctx.parts["test"].labels.numpy()
    e = entry(sample_ctx, one_hot_logits(np.ones(40, int)), one_hot_logits(y))
    assert model_sets.class_accuracies([e], sample_ctx) is None


def test_mia_uses_forgotten_classes_of_test_for_class_removal(class_ctx, sample_ctx):
    assert model_sets.mia_test_mask(class_ctx).sum() == 20
    assert model_sets.mia_test_mask(sample_ctx).all()


def test_mia_separable_vs_indistinguishable(class_ctx):
    rng = np.random.default_rng(0)
    confident = one_hot_logits(np.zeros(40, int), scale=20.0)  # forget loss ~ 0
    unsure = rng.normal(size=(80, C)).astype(np.float32)  # test loss ~ 1.4
    leaky = entry(class_ctx, confident, unsure)
    same = entry(class_ctx, rng.normal(size=(40, C)), rng.normal(size=(80, C)))
    leaky_score = model_sets.mia([leaky], class_ctx)
    assert leaky_score > 0.9
    assert model_sets.mia([same], class_ctx) < 0.75
    assert model_sets.mia([leaky, same], class_ctx, max_models=1) == leaky_score


def test_zrf_is_one_for_the_random_net_itself_and_checks_shapes(class_ctx):
    rand = model_sets.random_net_logits(class_ctx, seed=3)  # [40, C]
    assert rand.shape == (40, C)
    assert np.array_equal(rand, model_sets.random_net_logits(class_ctx, seed=3))
    assert not np.array_equal(rand, model_sets.random_net_logits(class_ctx, seed=4))
    same = entry(class_ctx, rand, np.zeros((80, C)))
    assert model_sets.zrf([same], rand) == {"js": pytest.approx(1.0), "official": pytest.approx(1.0)}
    confident = entry(class_ctx, one_hot_logits(np.zeros(40, int), 30.0), np.zeros((80, C)))
    far = model_sets.zrf([confident], rand)
    assert far["js"] < 0.8 and far["official"] < 1.0  # a confident model looks unlike it
    with pytest.raises(ValueError, match="same forget set"):
        model_sets.zrf([same], rand[:10])


def test_bad_input_is_explained(class_ctx):
    with pytest.raises(ValueError, match="no models"):
        model_sets.mia([], class_ctx)
    with pytest.raises(ValueError, match="inputs must be one of"):
        model_sets.random_net_logits(class_ctx, inputs="normalised")


def test_secondary_metrics_has_every_number(class_ctx, sample_ctx):
    for ctx, has_classes in ((class_ctx, True), (sample_ctx, False)):
        y = ctx.parts["test"].labels.numpy()
        rand = model_sets.random_net_logits(ctx)
        e = entry(ctx, one_hot_logits(ctx.parts["forget"].labels.numpy()), one_hot_logits(y))
        out = model_sets.secondary_metrics([e, e], ctx, rand)
        assert set(out) == {"zrf_js", "zrf_official", "mia", "mia_models",
                            "forget_class_test", "retain_class_test"}
        assert out["mia_models"] == 2
        assert (out["forget_class_test"] is not None) == has_classes
