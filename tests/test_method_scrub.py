"""scrub: the temperature-scaled KL, the min-step loss, the schedule of max and min
passes, and a max step that really moves away from the teacher."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from method_fixtures import CountingLoader, dict_batches, one_thread  # noqa: F401

from unlearnkit.methods import get_method, resolve_config, run_method
from unlearnkit.methods._common import distill_kl
from unlearnkit.methods.scrub import min_step_loss
from unlearnkit.models import build_model


def test_defaults_are_the_official_cifar10_settings():
    cfg = get_method("scrub").config()
    assert (cfg.lr, cfg.epochs, cfg.max_epochs, cfg.gamma, cfg.alpha, cfg.temperature) == \
        (5e-4, 3, 2, 0.99, 0.001, 4.0)
    assert (cfg.momentum, cfg.weight_decay) == (0.9, 5e-4)


def test_distill_kl_is_t_squared_kl_per_example():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 10, generator=g), torch.randn(5, 10, generator=g) * 2
    for T in (1.0, 4.0):
        ref = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="sum") * T * T / 5
        assert distill_kl(s, t, T).item() == pytest.approx(ref.item(), rel=1e-5)
    assert distill_kl(t, t, 4.0).item() == pytest.approx(0.0, abs=1e-6)
    y = torch.randint(0, 10, (5,), generator=g)
    loss = min_step_loss(s, t, y, gamma=0.99, alpha=0.001, T=4.0)
    ref = 0.99 * F.cross_entropy(s, y) + 0.001 * distill_kl(s, t, 4.0)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)


@pytest.mark.parametrize(("epochs", "max_epochs"), [(3, 2), (2, 0), (2, 5)])
def test_max_passes_over_forget_in_the_first_epochs_min_passes_every_epoch(epochs, max_epochs):
    retain = CountingLoader(dict_batches([i % 10 for i in range(24)]))
    forget = CountingLoader(dict_batches([0, 1, 2, 3]))
    cfg = resolve_config("scrub", {"epochs": epochs, "max_epochs": max_epochs})
    run_method("scrub", build_model("small_cnn"), retain, forget, None, seed=0, cfg=cfg)
    assert retain.passes == epochs
    assert forget.passes == min(epochs, max_epochs)


def test_max_steps_push_the_forget_outputs_away_from_the_original():
    """Ten epochs of max steps alone (gamma = alpha = 0 in the min step, which then
    only decays weights) raise KL(original || net) on the forget set; descending on it
    instead would keep the gap near 0 (about 1e-4 here)."""
    torch.manual_seed(0)
    net = build_model("small_cnn")
    forget = dict_batches([0, 1, 2, 3] * 4, seed=3)
    x = torch.cat([b["image"] for b in forget])
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():  # BN statistics of this data, then frozen: no drift from BN
        for m in bns:
            m.momentum = None
        net.train()(x)
        for m in bns:
            m.momentum = 0.0
    original = build_model("small_cnn")
    original.load_state_dict(net.state_dict())
    original.eval()
    cfg = resolve_config("scrub", {"epochs": 10, "max_epochs": 10, "gamma": 0.0, "alpha": 0.0,
                                   "lr": 0.03, "weight_decay": 0.0})
    run_method("scrub", net, dict_batches([5, 6] * 4), forget, None, seed=0, cfg=cfg)
    with torch.no_grad():
        gap = distill_kl(net(x), original(x), 4.0).item()
    assert gap > 0.05, gap
