"""reinit_lowgrad (Kookmin's MSG): the mask, the re-initialisation, the gradient scaling,
the LR schedule and the bad-input errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from method_fixtures import one_thread  # noqa: F401
from torch import nn

from unlearnkit.methods import resolve_config, run_method
from unlearnkit.methods._common import distill_kl, named_convs
from unlearnkit.methods.reinit_lowgrad import (
    fresh_weights,
    maskable_layers,
    reinit_masked,
    smallest_masks,
    step_loss,
    warmup_decay,
)
from unlearnkit.models import build_model, load_state


def _loaders(n_retain: int = 40, n_forget: int = 8, seed: int = 0):
    """Lists of (x, y) batches of random images: retain and forget."""
    g = torch.Generator().manual_seed(seed)

    def batches(n):
        x = torch.rand(n, 3, 32, 32, generator=g) * 255
        y = torch.randint(0, 10, (n,), generator=g)
        return [(x[i:i + 16], y[i:i + 16]) for i in range(0, n, 16)]
    return batches(n_retain), batches(n_forget)


def test_layer_masks_take_the_smallest_30_percent_of_each_tensor():
    g = torch.Generator().manual_seed(0)
    grads = {"a": torch.randn(8, 3, 3, 3, generator=g), "b": 100 * torch.randn(16, 8, 3, 3, generator=g)}
    masks = smallest_masks(grads, 0.3, "layer")
    for name, grad in grads.items():
        m = masks[name]
        assert m.shape == grad.shape and m.dtype == torch.bool
        assert int(m.sum()) == round(0.3 * grad.numel())
        assert grad.abs()[m].max() <= grad.abs()[~m].min()


def test_global_masks_rank_all_conv_weights_together():
    """A layer of tiny gradients is taken whole before any of a layer of large ones."""
    grads = {"small": torch.full((3, 3, 3, 3), 1e-3), "large": torch.ones(7, 3, 3, 3)}
    total = 10 * 27
    masks = smallest_masks(grads, 0.3, "global")
    assert int(masks["small"].sum() + masks["large"].sum()) == round(0.3 * total)
    assert masks["small"].all() and int(masks["large"].sum()) == round(0.3 * total) - 81
    per_layer = smallest_masks(grads, 0.3, "layer")
    assert int(per_layer["small"].sum()) == round(0.3 * 81)


def test_reinit_changes_exactly_the_masked_weights_with_kaiming_fan_out_std():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 128, 3, bias=False), nn.Conv2d(128, 8, 3, bias=False))
    before = [c.weight.detach().clone() for _, c in named_convs(net)]
    grads = {name: torch.randn_like(c.weight) for name, c in named_convs(net)}
    masks = smallest_masks(grads, 0.3, "layer")
    reinit_masked(net, masks, torch.Generator().manual_seed(1))
    for (name, conv), old in zip(named_convs(net), before):
        m = masks[name]
        assert torch.equal(conv.weight[~m], old[~m]), "kept weights must not change"
        assert (conv.weight[m] != old[m]).all(), "every masked weight gets a fresh value"
        assert int((conv.weight != old).sum()) == round(0.3 * old.numel())
        fan_out = conv.weight.shape[0] * 9
        std = conv.weight[m].std().item()
        assert std == pytest.approx(math.sqrt(2 / fan_out), rel=0.1), name


def test_warmup_decay_is_the_published_schedule():
    assert [warmup_decay(e, 5) for e in range(5)] == pytest.approx([1 / 3, 2 / 3, 1, 2 / 3, 1 / 3])
    for epochs in range(1, 12):
        factors = [warmup_decay(e, epochs) for e in range(epochs)]
        assert all(0 < f <= 1 for f in factors) and max(factors) == 1


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.05), ("adam", 0.01)])
def test_kept_weights_get_scaled_gradients_and_hooks_are_removed(optimizer, lr):
    """With grad_scale 0 and no weight decay, exactly the 70% kept conv weights keep
    their values through the fine-tuning (SGD: scaled gradients; Adam: scaled steps);
    afterwards no hook is left on the weights."""
    torch.manual_seed(0)
    net = build_model("small_cnn")
    original = copy.deepcopy(net.state_dict())
    retain, forget = _loaders()
    cfg = resolve_config("reinit_lowgrad", {"grad_scale": 0.0, "weight_decay": 0.0,
                                            "epochs": 2, "lr": lr, "optimizer": optimizer})
    run_method("reinit_lowgrad", net, retain, forget, None, seed=0, cfg=cfg)
    for name, conv in named_convs(net):
        old = original[f"{name}.weight"]
        kept = int((conv.weight == old).sum())
        assert kept == old.numel() - round(0.3 * old.numel()), name
        assert not conv.weight._backward_hooks, "gradient hooks must be removed"
    assert not torch.equal(net.fc.weight, original["fc.weight"]), "the head still trains"
    load_state(build_model("small_cnn"), copy.deepcopy(net).state_dict())


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.05), ("adam", 0.01)])
def test_full_gradient_scale_trains_every_conv_weight(optimizer, lr):
    """The control: with grad_scale 1 the kept weights move too."""
    torch.manual_seed(0)
    net = build_model("small_cnn")
    original = copy.deepcopy(net.state_dict())
    retain, forget = _loaders()
    cfg = resolve_config("reinit_lowgrad", {"grad_scale": 1.0, "weight_decay": 0.0,
                                            "epochs": 2, "lr": lr, "optimizer": optimizer})
    run_method("reinit_lowgrad", net, retain, forget, None, seed=0, cfg=cfg)
    name, conv = named_convs(net)[0]
    assert int((conv.weight == original[f"{name}.weight"]).sum()) < 0.05 * conv.weight.numel()


@pytest.mark.parametrize("bad", [{"reinit_fraction": 0.0}, {"reinit_fraction": 1.0},
                                 {"reinit_fraction": 1.5}, {"grad_scale": -0.1},
                                 {"retain_ratio": 0.0}, {"scope": "per-channel"},
                                 {"layers": "linear"}, {"optimizer": "rmsprop"},
                                 {"forget_ascent": -0.1}, {"ascent_batch": 0},
                                 {"distill": -1.0}, {"distill_temperature": 0.0}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        resolve_config("reinit_lowgrad", bad)


class _NoConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_a_network_without_convolutions_is_refused_before_training():
    net = _NoConv()
    before = copy.deepcopy(net.state_dict())
    retain, forget = _loaders()
    with pytest.raises(ValueError, match="no Conv2d"):
        run_method("reinit_lowgrad", net, retain, forget, None, seed=0,
                   cfg=resolve_config("reinit_lowgrad"))
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_an_empty_forget_set_is_refused():
    retain, _ = _loaders()
    with pytest.raises(ValueError, match="forget loader is empty"):
        run_method("reinit_lowgrad", build_model("small_cnn"), retain, [], None, seed=0,
                   cfg=resolve_config("reinit_lowgrad"))


def test_conv_only_leaves_linear_layers_as_they_were_and_conv_linear_resets_them_too():
    """small_cnn_mlp's hidden layer is left alone by the published conv-only mask and
    30% re-initialised with layers='conv+linear' (a negligible learning rate, so only a
    re-initialisation moves a weight by more than 1e-4)."""
    retain, forget = _loaders()
    n = 1024 * 256
    for layers, low, high in (("conv", 0, 0), ("conv+linear", 0.29 * n, 0.3 * n)):
        torch.manual_seed(0)
        net = build_model("small_cnn_mlp")
        before = net.hidden.weight.detach().clone()
        cfg = resolve_config("reinit_lowgrad", {"layers": layers, "weight_decay": 0.0,
                                                "epochs": 1, "lr": 1e-9})
        run_method("reinit_lowgrad", net, retain, forget, None, seed=0, cfg=cfg)
        moved = int(((net.hidden.weight - before).abs() > 1e-4).sum())
        assert low <= moved <= high, (layers, moved)
        assert not net.hidden.weight._backward_hooks


def test_maskable_layers_are_convs_then_also_linears_in_module_order():
    net = build_model("small_cnn_mlp")
    convs = [name for name, _ in maskable_layers(net, "conv")]
    both = [name for name, _ in maskable_layers(net, "conv+linear")]
    assert convs == [name for name, _ in named_convs(net)]
    assert set(both) - set(convs) == {"hidden", "fc"}
    assert both == [name for name, m in net.named_modules() if name in set(both)]


def test_fresh_linear_weights_follow_pytorchs_default_uniform_bound():
    layer = nn.Linear(400, 50)
    w = fresh_weights(layer, torch.Generator().manual_seed(0))
    bound = 1 / math.sqrt(400)
    assert w.shape == layer.weight.shape and w.abs().max() <= bound
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_step_loss_is_retain_ce_minus_ascent_plus_distillation():
    """The fine-tuning loss by hand: one forward over retain + forget, CE - a * CE, and
    the KL_T term to the teacher on the retain part only."""
    torch.manual_seed(0)
    net, teacher = build_model("small_cnn").eval(), build_model("small_cnn").eval()
    (x, y), = _loaders(16)[0][:1]
    (xf, yf), = _loaders(n_forget=8)[1][:1]
    cfg = resolve_config("reinit_lowgrad", {"forget_ascent": 0.3, "distill": 0.5,
                                            "distill_temperature": 2.0})
    with torch.no_grad():
        got = step_loss(net, x, y, (xf, yf), teacher, cfg)
        both = net(torch.cat([x, xf]))
        want = (F.cross_entropy(both[:16], y) - 0.3 * F.cross_entropy(both[16:], yf)
                + 0.5 * distill_kl(both[:16], teacher(x), 2.0))
        plain = step_loss(net, x, y, None, None, resolve_config("reinit_lowgrad", {}))
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    assert plain.item() == pytest.approx(F.cross_entropy(net(x), y).item(), rel=1e-5)


def _forget_ce(net, forget) -> float:
    net.eval()
    with torch.no_grad():
        return sum(F.cross_entropy(net(x), y, reduction="sum").item() for x, y in forget)


def test_forget_ascent_raises_the_forget_loss():
    """Same seed and settings, with and without the ascent term: the term's run ends
    with the higher CE on the forget set (the control shows the run itself is the same)."""
    retain, forget = _loaders(n_forget=16)
    losses = {}
    for ascent in (0.0, 0.0, 0.5):
        torch.manual_seed(0)
        net = build_model("small_cnn")
        cfg = resolve_config("reinit_lowgrad", {"forget_ascent": ascent, "epochs": 2,
                                                "lr": 0.01, "optimizer": "adam"})
        run_method("reinit_lowgrad", net, retain, forget, None, seed=3, cfg=cfg)
        losses.setdefault(ascent, []).append(_forget_ce(net, forget))
    assert losses[0.0][0] == losses[0.0][1]
    assert losses[0.5][0] > losses[0.0][0] + 1.0


def test_distillation_keeps_the_net_closer_to_the_original():
    retain, forget = _loaders()
    gaps = {}
    for distill in (0.0, 1.0):
        torch.manual_seed(0)
        net = build_model("small_cnn")
        original = copy.deepcopy(net).eval()
        cfg = resolve_config("reinit_lowgrad", {"distill": distill, "epochs": 2, "lr": 0.01,
                                                "reinit_fraction": 0.5})
        run_method("reinit_lowgrad", net, retain, forget, None, seed=0, cfg=cfg)
        net.eval()
        with torch.no_grad():
            gaps[distill] = sum(distill_kl(net(x), original(x), 1.0).item() for x, _ in retain)
    assert gaps[1.0] < 0.5 * gaps[0.0], gaps
