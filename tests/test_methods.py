"""Every registered method, on every scenario it serves, on a tiny memorised model.

Parametrised by the registry: registering a method is what gets it tested here. The
fixture (scikit-learn digits upscaled to 32x32 RGB 0-255, a small_cnn trained to 100%
training accuracy) is built in this file and trained once per module.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from unlearnkit.data.base import ImageSet
from unlearnkit.data.loaders import TensorLoader
from unlearnkit.methods import get_method, list_methods, run_method, serves
from unlearnkit.methods.unsir import learn_noise
from unlearnkit.models import build_model, load_state
from unlearnkit.train import TrainConfig, init_model, predict_logits, train

CASES = [(m, s) for m in list_methods() for s in serves(m)]
# Plain fine-tuning on retain forgets only through catastrophic forgetting, which on this
# 80-image world is a coin toss: on one 2-core EPYC its forget confidence moved 1.910 ->
# 1.930 (2026-12-06), on another it fell. Every other check still applies to it.
MAY_NOT_LOWER = {"finetune"}
FORGET_CLASS = 3


def _digits(n_train: int = 80, n_val: int = 100) -> tuple[ImageSet, ImageSet]:
    """Digits 8x8 -> 32x32 RGB with raw 0-255 values; a seeded train / val split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None]  # [n, 1, 8, 8], 0-16
    x = F.interpolate(x, size=32, mode="nearest").repeat(1, 3, 1, 1) * (255 / 16)  # [n, 3, 32, 32]
    y = torch.tensor(d.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    tr, va = order[:n_train], order[n_train:n_train + n_val]
    return ImageSet(x[tr].contiguous(), y[tr]), ImageSet(x[va].contiguous(), y[va])


@pytest.fixture(scope="module")
def world():
    """Train set, val set, the memorised model's state and both scenario splits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # fastest on a shared 2-core machine (no spinning threads)
    train_set, val_set = _digits()
    net = init_model("small_cnn", 0)
    cfg = TrainConfig(epochs=20, lr=4e-3, weight_decay=0.0, batch_size=8, class_weighted=False)
    train(net, train_set, cfg, seed=0, progress=False)
    is_forget = train_set.labels == FORGET_CLASS
    sample = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(1))
    n_forget = len(train_set) // 10
    splits = {
        "class": (torch.nonzero(~is_forget).flatten(), torch.nonzero(is_forget).flatten()),
        "sample": (sample[n_forget:], sample[:n_forget]),
    }
    yield {"train": train_set, "val": val_set, "state": copy.deepcopy(net.state_dict()),
           "splits": splits}
    torch.set_num_threads(threads)


def _model(world) -> torch.nn.Module:
    """A fresh copy of the memorised small_cnn."""
    return load_state(build_model("small_cnn"), copy.deepcopy(world["state"])).eval()


def _loaders(world, scenario: str, tuples: bool = False):
    """retain, forget and val loaders of ``scenario``: TensorLoaders or lists of tuples."""
    retain_idx, forget_idx = world["splits"][scenario]
    sets = world["train"].subset(retain_idx), world["train"].subset(forget_idx), world["val"]
    if tuples:
        return [[(s.images[i:i + 32], s.labels[i:i + 32]) for i in range(0, len(s), 32)]
                for s in sets]
    return [TensorLoader(s, batch_size=16) for s in sets]


def _confidence(net, data: ImageSet) -> float:
    """Mean logit-scaled confidence on the true label (the metric's statistic)."""
    z = torch.tensor(predict_logits(net, data), dtype=torch.float64)  # [n, C]
    log_p = z.log_softmax(1)
    true = log_p.gather(1, data.labels[:, None]).squeeze(1)  # [n]
    others = log_p.masked_fill(F.one_hot(data.labels, z.shape[1]).bool(), float("-inf"))
    return float((true - torch.logsumexp(others, 1)).mean())


def _run(world, method: str, scenario: str, seed: int, tuples: bool = False):
    """The memorised model after ``method`` on ``scenario`` with its quick budget (the
    ``quick`` values its config declares; published defaults elsewhere)."""
    net = _model(world)
    retain, forget, val = _loaders(world, scenario, tuples)
    out = run_method(method, net, retain, forget, val, seed=seed, scenario_kind=scenario,
                     cfg=get_method(method).config.quick())
    assert out is net, "a method changes net in place and returns it"
    return net


@pytest.mark.parametrize(("method", "scenario"), CASES)
def test_method_unlearns(world, method, scenario):
    """Runs, changes the net, stays a loadable small_cnn in eval mode, repeats for a seed,
    varies by seed, lowers forget confidence."""
    nets = [_run(world, method, scenario, seed) for seed in (0, 1)]
    for net in nets:
        assert not net.training, "a method must leave the net in eval mode"
        assert all(torch.isfinite(v).all() for v in net.state_dict().values() if v.is_floating_point())
        load_state(build_model("small_cnn", num_classes=10), net.state_dict())
    a, b = (n.state_dict() for n in nets)
    assert any(not torch.equal(a[k], b[k]) for k in a), "seeds 0 and 1 gave identical networks"
    original = _model(world).state_dict()
    assert any(not torch.equal(a[k], original[k]) for k in a), "the method changed nothing"
    again = _run(world, method, scenario, 0).state_dict()
    assert all(torch.equal(a[k], again[k]) for k in a), "seed 0 twice gave different networks"
    forget = world["train"].subset(world["splits"][scenario][1])
    before = _confidence(_model(world), forget)
    after = sum(_confidence(n, forget) for n in nets) / 2
    if method not in MAY_NOT_LOWER:
        assert after < before, f"forget confidence {before:.3f} -> {after:.3f}: not lowered"


@pytest.mark.parametrize("method", list_methods())
def test_method_accepts_tuple_batches(world, method):
    """Plain (x, y) batches in plain lists work as well as the competition's dict batches."""
    scenario = serves(method)[0]
    net = _run(world, method, scenario, seed=0, tuples=True)
    assert not net.training
    load_state(build_model("small_cnn"), net.state_dict())


def test_unsir_noise_raises_the_forget_class_loss(world):
    """Published noise settings (40 Adam steps, lr 0.1, L2 0.1, data scale) raise CE."""
    net = _model(world)
    images = world["train"].images
    center = images.mean(dim=(0, 2, 3)).reshape(3, 1, 1)  # [3, 1, 1]
    scale = images.std(dim=(0, 2, 3)).reshape(3, 1, 1)  # [3, 1, 1]
    labels = torch.full((64,), FORGET_CLASS)
    kwargs = dict(center=center, scale=scale, batch_size=64)
    start = learn_noise(net, labels, steps=0, generator=torch.Generator().manual_seed(1), **kwargs)
    noise = learn_noise(net, labels, steps=40, lr=0.1, l2_weight=0.1,
                        generator=torch.Generator().manual_seed(1), **kwargs)
    with torch.no_grad():
        loss_start = F.cross_entropy(net(start), labels)
        loss_noise = F.cross_entropy(net(noise), labels)
    assert loss_noise > loss_start + 1.0, f"CE {loss_start:.2f} -> {loss_noise:.2f}"
