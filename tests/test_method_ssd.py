"""ssd: the dampening rule on hand-made importances, the importance as a mean of squared
batch gradients, the full-data batches, and the seeded variation with its switch."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from method_fixtures import dict_batches, one_thread  # noqa: F401
from torch import nn

from unlearnkit.methods import get_method, resolve_config, run_method
from unlearnkit.methods.ssd import dampen_, full_data_batches, importances
from unlearnkit.models import build_model


def test_defaults_are_the_published_resnet18_values():
    cfg = get_method("ssd").config()
    assert (cfg.alpha, cfg.lambda_, cfg.deterministic) == (10.0, 1.0, False)


def test_dampening_rule_on_a_hand_made_importance_pair():
    theta = torch.tensor([1.0, 2.0, 3.0, 4.0, -5.0, 6.0, 7.0])
    i_d = torch.tensor([1.0, 1.0, 1.0, 1.0, 2.0, 0.0, 0.0])
    i_f = torch.tensor([5.0, 20.0, 11.0, 100.0, 40.0, 3.0, 0.0])
    # selected where i_f > 10 * i_d: [no, yes, yes, yes, yes, yes (i_d = 0), no (0 > 0)]
    p = theta.clone()
    assert dampen_([p], [i_d], [i_f], alpha=10.0, lam=1.0) == 5
    expected = torch.tensor([1.0, 2 / 20, 3 / 11, 4 / 100, -5 * 2 / 40, 0.0, 7.0])
    torch.testing.assert_close(p, expected)
    # lambda scales the factor, which is capped at 1: index 1 (20 * 1 / 20) stays whole
    p = theta.clone()
    dampen_([p], [i_d], [i_f], alpha=10.0, lam=20.0)
    torch.testing.assert_close(p, torch.tensor([1.0, 2.0, 3.0, 4 * 20 / 100, -5.0, 0.0, 7.0]))
    # a larger alpha selects less
    p = theta.clone()
    assert dampen_([p], [i_d], [i_f], alpha=50.0, lam=1.0) == 2
    torch.testing.assert_close(p, torch.tensor([1.0, 2.0, 3.0, 0.04, -5.0, 0.0, 7.0]))


def test_importance_is_the_mean_over_batches_of_squared_batch_gradients():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(4, 6, generator=g), torch.randint(0, 3, (4,), generator=g))
               for _ in range(3)]
    got = importances(net, batches)
    expected = [torch.zeros_like(p) for p in net.parameters()]
    for x, y in batches:
        net.zero_grad()
        F.cross_entropy(net(x), y).backward()
        for e, p in zip(expected, net.parameters()):
            e += p.grad ** 2 / 3
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    # not the square of the mean gradient, nor per-example squares
    mean_grad = torch.autograd.grad(
        sum(F.cross_entropy(net(x), y) for x, y in batches) / 3, list(net.parameters()))
    assert not torch.allclose(got[0], mean_grad[0] ** 2)


def test_full_data_batches_hold_all_forget_and_the_drawn_retain_share():
    retain = dict_batches([i % 10 for i in range(160)], size=16)
    fx = torch.full((10, 3, 32, 32), -1.0)  # recognisable: no retain image is negative
    fy = torch.arange(10)
    plain = list(full_data_batches(retain, fx, fy, None, None))
    assert len(plain) == 10 and all(len(y) == 17 for _, y in plain)  # spread evenly
    assert sum(int((x[:, 0, 0, 0] < 0).sum()) for x, _ in plain) == 10
    drawn = list(full_data_batches(retain, fx, fy, None, torch.Generator().manual_seed(0), 0.5))
    x = torch.cat([b for b, _ in drawn])
    assert int((x[:, 0, 0, 0] < 0).sum()) == 10
    assert 50 < len(x) - 10 < 110  # about half of the 160 retain images
    assert all(len(y) == 16 for _, y in drawn[:-1])  # the retain loader's batch size
    again = torch.cat([b for b, _ in full_data_batches(retain, fx, fy, None,
                                                       torch.Generator().manual_seed(0), 0.5)])
    assert torch.equal(x, again)


def _ssd_runs(overrides, seeds):
    retain = dict_batches([i % 10 for i in range(64)])
    forget = dict_batches([3] * 8, seed=5)
    torch.manual_seed(0)
    start = build_model("small_cnn")
    outs = []
    for seed in seeds:
        net = copy.deepcopy(start)
        run_method("ssd", net, retain, forget, None, seed=seed,
                   cfg=resolve_config("ssd", overrides))
        outs.append(net.state_dict())
    return start.state_dict(), outs


def test_default_varies_by_seed_and_the_switch_gives_the_published_deterministic_ssd():
    start, (a, b, a2) = _ssd_runs({}, (0, 1, 0))
    assert any(not torch.equal(a[k], b[k]) for k in a), "seeds must give different nets"
    assert all(torch.equal(a[k], a2[k]) for k in a), "a seed must repeat"
    assert any(not torch.equal(a[k], start[k]) for k in a), "something is dampened"
    start, (d0, d1) = _ssd_runs({"deterministic": True}, (0, 1))
    assert all(torch.equal(d0[k], d1[k]) for k in d0), "deterministic: seeds do not matter"
    assert any(not torch.equal(d0[k], start[k]) for k in d0)
    # only multiplication by a factor in [0, 1]: no entry grows or flips its sign
    for k, v in d0.items():
        if v.is_floating_point() and "running" not in k:
            assert (v.abs() <= start[k].abs()).all() and (v * start[k] >= 0).all(), k


def test_ssd_takes_no_gradient_step_and_keeps_bn_statistics():
    start, (out,) = _ssd_runs({}, (0,))
    for k in start:
        if "running" in k or "num_batches" in k:
            assert torch.equal(start[k], out[k]), f"{k}: importances must run in eval mode"
