"""reinit_lowgrad (Kookmin's MSG): the mask, the re-initialisation, the gradient scaling,
the LR schedule and the bad-input errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from method_fixtures import one_thread  # noqa: F401
from torch import nn

from unlearnkit.methods import resolve_config, run_method
from unlearnkit.methods._common import named_convs
from unlearnkit.methods.reinit_lowgrad import (
    fresh_weights,
    maskable_layers,
    reinit_masked,
    smallest_masks,
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


def test_kept_weights_get_scaled_gradients_and_hooks_are_removed():
    """With grad_scale 0 and no weight decay, exactly the 70% kept conv weights keep
    their values through the fine-tuning; afterwards no hook is left on the weights."""
    torch.manual_seed(0)
    net = build_model("small_cnn")
    original = copy.deepcopy(net.state_dict())
    retain, forget = _loaders()
    cfg = resolve_config("reinit_lowgrad", {"grad_scale": 0.0, "weight_decay": 0.0,
                                            "epochs": 2, "lr": 0.05})
    run_method("reinit_lowgrad", net, retain, forget, None, seed=0, cfg=cfg)
    for name, conv in named_convs(net):
        old = original[f"{name}.weight"]
        kept = int((conv.weight == old).sum())
        assert kept == old.numel() - round(0.3 * old.numel()), name
        assert not conv.weight._backward_hooks, "gradient hooks must be removed"
    assert not torch.equal(net.fc.weight, original["fc.weight"]), "the head still trains"
    load_state(build_model("small_cnn"), copy.deepcopy(net).state_dict())


def test_full_gradient_scale_trains_every_conv_weight():
    """The control: with grad_scale 1 the kept weights move too."""
    torch.manual_seed(0)
    net = build_model("small_cnn")
    original = copy.deepcopy(net.state_dict())
    retain, forget = _loaders()
    cfg = resolve_config("reinit_lowgrad", {"grad_scale": 1.0, "weight_decay": 0.0,
                                            "epochs": 2, "lr": 0.05})
    run_method("reinit_lowgrad", net, retain, forget, None, seed=0, cfg=cfg)
    name, conv = named_convs(net)[0]
    assert int((conv.weight == original[f"{name}.weight"]).sum()) < 0.05 * conv.weight.numel()


@pytest.mark.parametrize("bad", [{"reinit_fraction": 0.0}, {"reinit_fraction": 1.0},
                                 {"reinit_fraction": 1.5}, {"grad_scale": -0.1},
                                 {"retain_ratio": 0.0}, {"scope": "per-channel"},
                                 {"layers": "linear"}])
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
