"""contrastive_forget (fanchuan's FCS): its losses on hand tensors, its retain sampling,
its published defaults."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unlearnkit.methods import resolve_config
from unlearnkit.methods.contrastive_forget import (
    ContrastiveForgetConfig,
    _Reservoir,
    contrastive_loss,
    uniform_kl,
)


def test_contrastive_loss_is_the_mean_negative_log_softmax_over_retain():
    """Mean over (i, j) of -log softmax_j(z_f[i] . z_r[j] / t), written out by hand."""
    zf = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]])
    zr = torch.tensor([[2.0, 0.0, 1.0], [-1.0, 1.0, 0.0], [0.5, 0.5, -3.0], [1.0, 2.0, 3.0]])
    t = 1.15
    total = 0.0
    for i in range(2):
        s = [sum(zf[i, c].item() * zr[j, c].item() for c in range(3)) / t for j in range(4)]
        norm = math.log(sum(math.exp(v) for v in s))
        total += sum(norm - v for v in s)
    assert contrastive_loss(zf, zr, t).item() == pytest.approx(total / 8, rel=1e-6)


def test_contrastive_loss_is_least_when_all_retain_similarities_are_equal():
    """Equal dot products give log(Br), the minimum; unequal ones give more."""
    zr = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    assert contrastive_loss(torch.zeros(3, 10), zr, 1.15).item() == pytest.approx(math.log(5))
    assert contrastive_loss(torch.ones(3, 10) * 2, zr, 1.15).item() > math.log(5) + 0.1


def test_contrastive_loss_trains_only_the_forget_side():
    """The retain logits are a fixed target: no gradient reaches them."""
    zf = torch.randn(2, 4, requires_grad=True)
    zr = torch.randn(3, 4, requires_grad=True)
    contrastive_loss(zf, zr, 1.0).backward()
    assert zr.grad is None and zf.grad is not None and zf.grad.abs().sum() > 0


def test_uniform_kl_matches_kl_div_batchmean():
    """KL(uniform || p) with batchmean reduction; 0 for uniform predictions."""
    z = torch.tensor([[3.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 8.0]])
    uniform = torch.full_like(z, 0.25)
    expected = F.kl_div(F.log_softmax(z, 1), uniform, reduction="batchmean")
    torch.testing.assert_close(uniform_kl(z), expected)
    assert uniform_kl(torch.full((3, 4), 7.0)).item() == pytest.approx(0.0, abs=1e-6)


def test_reservoir_samples_the_whole_stream_uniformly():
    """k distinct images from anywhere in a fixed-order stream, seed-dependent."""
    stream = [torch.arange(i, i + 50, dtype=torch.float32).reshape(50, 1) for i in range(0, 1000, 50)]

    def sample(seed):
        r = _Reservoir(100, torch.Generator().manual_seed(seed))
        for x in stream:
            r.offer(x)
        return torch.cat(r.batches(30)).flatten()

    a, b = sample(0), sample(1)
    assert len(a) == 100 and len(a.unique()) == 100
    assert [len(x) for x in _Reservoir(1, torch.Generator()).batches(30)] == []
    assert a.max() > 900 and a.min() < 100, "the sample must span the whole stream"
    assert not torch.equal(a.sort().values, b.sort().values)
    small = _Reservoir(5000, torch.Generator().manual_seed(0))
    for x in stream:
        small.offer(x)
    assert sorted(torch.cat(small.batches(256)).flatten().tolist()) == list(range(1000))


def test_defaults_are_the_published_ones():
    """fanchuan's notebook / write-up values."""
    cfg = ContrastiveForgetConfig()
    assert (cfg.uniform_lr, cfg.epochs, cfg.temperature, cfg.forget_lr, cfg.forget_lr_min,
            cfg.retain_lr, cfg.retain_weight_decay, cfg.momentum, cfg.batch_size) == (
        5e-3, 8, 1.15, 3e-4, 1e-6, 4e-3, 1e-2, 0.9, 256)


@pytest.mark.parametrize("bad", [{"temperature": 0.0}, {"epochs": 0}, {"batch_size": 1},
                                 {"momentum": 1.0}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        resolve_config("contrastive_forget", bad)
