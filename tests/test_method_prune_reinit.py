"""prune_reinit (PRMQ): the pruning, the re-initialisation range, the entropy term, the
class weights and the fp16 round trip, each against its formula; bad input refused."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from method_fixtures import dict_batches, one_thread  # noqa: F401
from torch import nn

from unlearnkit.methods import resolve_config, run_method
from unlearnkit.methods.prune_reinit import (
    entropy_matching_loss,
    fp16_roundtrip_,
    magnitude_prune_masks,
    power_class_weights,
    prune_and_reinit_,
    reinit_bound,
)
from unlearnkit.models import build_model


class _Mixed(nn.Module):
    """A grouped conv, a conv with bias, BN and a linear head: fan_in is not just C_in * k * k."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 8, 3, groups=2, bias=True)  # fan_in 2 * 9 = 18
        self.bn = nn.BatchNorm2d(8)
        self.b = nn.Conv2d(8, 16, 5, bias=False)  # fan_in 200
        self.head = nn.Linear(16, 10)  # fan_in 16

    def forward(self, x):
        return self.head(self.b(self.bn(self.a(x))).mean(dim=(2, 3)))


def test_masks_prune_exactly_the_smallest_magnitudes_globally():
    a = torch.tensor([[0.5, -0.1], [3.0, -2.0]])
    b = torch.tensor([0.05, -0.2, 1.0, 0.01, 4.0])
    masks = magnitude_prune_masks([a, b], ratio=5 / 9)
    assert [m.shape for m in masks] == [a.shape, b.shape]
    assert sum(int(m.sum()) for m in masks) == 5
    pruned = torch.cat([a[masks[0]], b[masks[1]]]).abs()
    kept = torch.cat([a[~masks[0]], b[~masks[1]]]).abs()
    assert sorted(pruned.tolist()) == pytest.approx([0.01, 0.05, 0.1, 0.2, 0.5])
    assert pruned.max() < kept.min()
    # one threshold for all tensors: a tensor of tiny values is pruned whole
    masks = magnitude_prune_masks([torch.full((3,), 1e-3), torch.arange(1.0, 8.0)], ratio=0.3)
    assert masks[0].all() and not masks[1].any()


@pytest.mark.parametrize("ratio", [0.5, 0.9, 0.99])
def test_prune_and_reinit_prunes_99_percent_and_redraws_in_the_published_range(ratio):
    torch.manual_seed(0)
    net = _Mixed()
    with torch.no_grad():
        net.bn.weight.uniform_(0.5, 1.5)
    before = copy.deepcopy(net)
    layers = [(net.a, before.a), (net.b, before.b), (net.head, before.head)]
    tensors = [t for _, m in layers for t in (m.weight, m.bias) if t is not None]
    n_total = sum(t.numel() for t in tensors)
    masks = iter(magnitude_prune_masks(tensors, ratio))

    count = prune_and_reinit_(net, ratio, torch.Generator().manual_seed(3))

    assert count == round(ratio * n_total)
    bounds = {"a": 1 / math.sqrt(18), "b": 1 / math.sqrt(200), "head": 1 / math.sqrt(16)}
    drawn = []
    for name, (m, old) in zip(("a", "b", "head"), layers):
        assert reinit_bound(m.weight) == pytest.approx(bounds[name])
        mask = next(masks)
        assert torch.equal(m.weight[~mask], old.weight[~mask]), "kept weights must not move"
        fresh = m.weight[mask]
        assert (fresh.abs() <= bounds[name]).all()
        assert not torch.equal(fresh, old.weight[mask])
        drawn.append(fresh / bounds[name])
        if m.bias is not None:
            mask = next(masks)
            assert (m.bias[mask] == 0).all() and torch.equal(m.bias[~mask], old.bias[~mask])
    unit = torch.cat(drawn)  # should be U(-1, 1)
    if unit.numel() > 2000:
        assert unit.mean().abs() < 0.05 and unit.var().item() == pytest.approx(1 / 3, rel=0.1)
        assert unit.min() < -0.95 and unit.max() > 0.95
    for key in ("weight", "bias", "running_mean", "running_var"):
        assert torch.equal(getattr(net.bn, key), getattr(before.bn, key)), "BN is untouched"


def test_prune_and_reinit_is_seeded():
    nets = [_Mixed() for _ in range(3)]
    for n in nets[1:]:
        n.load_state_dict(nets[0].state_dict())
    for n, seed in zip(nets, (1, 1, 2)):
        prune_and_reinit_(n, 0.9, torch.Generator().manual_seed(seed))
    w = [n.b.weight for n in nets]
    assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])


def test_entropy_matching_term():
    C = 10
    uniform = torch.zeros(2, C)
    peaked = torch.tensor([[8.0] + [0.0] * (C - 1), [0.0] * (C - 1) + [3.0]])
    p = F.softmax(peaked, dim=1)
    h_peaked = -(p * p.log()).sum(dim=1)
    expected = ((math.log(C) - h_peaked) ** 2).mean()
    assert entropy_matching_loss(uniform, peaked).item() == pytest.approx(expected.item(), rel=1e-6)
    assert entropy_matching_loss(peaked, peaked + 5.0).item() == pytest.approx(0.0, abs=1e-6)
    # a permutation of classes has the same entropy: the term ignores which class
    assert entropy_matching_loss(peaked.flip(1), peaked).item() == pytest.approx(0.0, abs=1e-6)
    s = peaked.clone().requires_grad_(True)
    entropy_matching_loss(s, uniform).backward()
    assert s.grad.abs().sum() > 0


def test_class_weights_are_count_to_the_minus_power():
    w = power_class_weights(torch.tensor([1, 1024, 0, 32]), 0.1)
    torch.testing.assert_close(w, torch.tensor([1.0, 0.5, 1.0, 32 ** -0.1]))
    assert torch.equal(power_class_weights(torch.tensor([3, 9]), 0.0), torch.ones(2))


def test_fp16_roundtrip_rounds_and_keeps_out_of_range_values():
    net = _Mixed()
    with torch.no_grad():
        net.head.weight.fill_(0.1)
        net.bn.running_var.fill_(1e6)  # beyond fp16's 65504
        net.bn.running_mean.fill_(1e-9)  # underflows fp16
    fp16_roundtrip_(net)
    assert torch.equal(net.head.weight, torch.full_like(net.head.weight, 0.1).half().float())
    assert not torch.equal(net.head.weight, torch.full_like(net.head.weight, 0.1))
    assert (net.bn.running_var == 1e6).all()
    assert (net.bn.running_mean == 0).all()
    assert net.head.weight.dtype == torch.float32


def test_the_fp16_switch_rounds_the_trained_net_and_nothing_else():
    retain, forget = dict_batches([i % 10 for i in range(40)]), dict_batches([0, 1, 2, 3])
    torch.manual_seed(0)
    start = build_model("small_cnn").state_dict()
    outs = {}
    for flag in (True, False):
        net = build_model("small_cnn")
        net.load_state_dict(start)
        cfg = resolve_config("prune_reinit", {"epochs": 1.0, "fp16_roundtrip": flag})
        run_method("prune_reinit", net, retain, forget, None, seed=0, cfg=cfg)
        outs[flag] = net.state_dict()
    w = outs[True]["fc.weight"]
    assert torch.equal(w, w.half().float()), "fp16 round trip applied"
    assert not torch.equal(outs[False]["fc.weight"], outs[False]["fc.weight"].half().float())
    for key, value in outs[False].items():
        rounded = value.half().float() if value.is_floating_point() else value
        assert torch.equal(outs[True][key], rounded), key


@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5, -0.2])
def test_pruning_ratio_outside_the_open_unit_interval_is_refused(ratio):
    with pytest.raises(ValueError, match=r"prune_reinit\.prune_ratio = .* must be in \(0, 1\)"):
        resolve_config("prune_reinit", {"prune_ratio": ratio})


def test_a_model_without_conv_or_linear_is_refused():
    class Bare(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return x.flatten(1)[:, :10] * self.scale

    net = Bare()
    with pytest.raises(ValueError, match="Conv2d and Linear.*Bare has none"):
        run_method("prune_reinit", net, dict_batches([0, 1] * 4), dict_batches([0, 1]), None, seed=0,
                   cfg=resolve_config("prune_reinit"))
    assert net.scale.item() == 1.0
