"""salun: the saliency mask (top gamma of |sum of grad of -CE over forget|, over all
parameters), the masked SGD that never moves masked-out entries, and a full run."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from method_fixtures import dict_batches, one_thread  # noqa: F401

from unlearnkit.methods import get_method, resolve_config, run_method
from unlearnkit.methods.salun import _MaskedSGD, saliency_mask, top_fraction_masks
from unlearnkit.models import build_model


def _trained_bn_net():
    """A small_cnn whose BN statistics are not the fresh 0 / 1 (eval mode matters)."""
    torch.manual_seed(0)
    net = build_model("small_cnn")
    with torch.no_grad():
        net.train()(torch.cat([b["image"] for b in dict_batches(list(range(10)) * 4, seed=9)]))
    return net.eval()


def test_defaults_are_the_official_readme_example():
    cfg = get_method("salun").config()
    assert (cfg.gamma, cfg.lr, cfg.epochs, cfg.momentum, cfg.weight_decay) == \
        (0.5, 0.013, 10, 0.9, 5e-4)


def test_top_fraction_masks_pick_the_largest_scores_globally():
    a, b = torch.tensor([[0.1, 5.0], [0.3, 0.2]]), torch.tensor([4.0, 0.05, 3.0, 0.4])
    masks = top_fraction_masks([a, b], gamma=0.375)  # floor(0.375 * 8) = 3
    assert masks[0].tolist() == [[False, True], [False, False]]
    assert masks[1].tolist() == [True, False, True, False]
    assert sum(int(m.sum()) for m in top_fraction_masks([a, b], 0.99)) == 7  # floor


@pytest.mark.parametrize("gamma", [0.1, 0.5, 1.0])
def test_saliency_mask_is_top_gamma_of_the_abs_summed_forget_gradient(gamma):
    net = _trained_bn_net()
    forget = dict_batches([0, 1, 2, 3, 4] * 4, seed=2)  # 20 examples: batches of 8, 8, 4
    before = copy.deepcopy(net.state_dict())
    masks = saliency_mask(net, forget, torch.device("cpu"), gamma)
    assert not net.training and all(p.grad is None for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())

    # reference: backward() of -CE per batch accumulates the raw sum of gradients
    net.zero_grad()
    for b in forget:
        (-F.cross_entropy(net(b["image"]), b["age_group"])).backward()
    score = [p.grad.abs() for p in net.parameters()]
    net.zero_grad(set_to_none=True)

    params = list(net.parameters())
    assert [m.shape for m in masks] == [p.shape for p in params]  # BN and fc included
    n = sum(p.numel() for p in params)
    assert sum(int(m.sum()) for m in masks) == int(gamma * n)
    if gamma < 1:
        picked = torch.cat([s[m] for s, m in zip(score, masks)])
        left = torch.cat([s[~m] for s, m in zip(score, masks)])
        assert picked.min() >= left.max()
        # |sum of gradients| ranks differently from a sum of per-batch |gradients|
        per_batch = [torch.zeros_like(p) for p in params]
        for b in forget:
            grads = torch.autograd.grad(-F.cross_entropy(net(b["image"]), b["age_group"]), params)
            for acc, g in zip(per_batch, grads):
                acc += g.abs()
        other = top_fraction_masks(per_batch, gamma)
        assert any(not torch.equal(m, o) for m, o in zip(masks, other))


def test_masked_sgd_never_moves_masked_out_entries():
    torch.manual_seed(0)
    net = build_model("small_cnn").train()
    masks = [torch.rand(p.shape) < 0.5 for p in net.parameters()]
    start = [p.detach().clone() for p in net.parameters()]
    opt = _MaskedSGD(net, masks, lr=0.1, momentum=0.9, weight_decay=0.1)
    for b in dict_batches([i % 10 for i in range(32)]):
        opt.step(F.cross_entropy(net(b["image"]), b["age_group"]))
    moved = 0
    for p, m, s in zip(net.parameters(), masks, start):
        assert torch.equal(p[~m], s[~m]), "masked-out entries must keep their values"
        buf = opt.opt.state[p]["momentum_buffer"]
        assert (buf[~m] == 0).all(), "and their momentum must be zero"
        moved += int((p[m] != s[m]).sum())
    assert moved > 0.9 * sum(int(m.sum()) for m in masks)


def test_a_run_trains_only_the_salient_half():
    net = _trained_bn_net()
    retain = dict_batches([i % 10 for i in range(32)])
    forget = dict_batches([3, 3, 7, 7], seed=4)
    masks = saliency_mask(net, forget, torch.device("cpu"), 0.5)
    start = [p.detach().clone() for p in net.parameters()]
    run_method("salun", net, retain, forget, None, seed=0,
               cfg=resolve_config("salun", {"epochs": 2}))
    changed = 0
    for p, m, s in zip(net.parameters(), masks, start):
        assert torch.equal(p[~m], s[~m])
        changed += int((p[m] != s[m]).sum())
    assert changed > 0.5 * sum(int(m.sum()) for m in masks)
