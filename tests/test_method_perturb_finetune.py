"""perturb_finetune (Seif Achour's CFW): the class weights, the batch-weighted loss, which
weights are perturbed, and the bad-input errors."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from method_fixtures import one_thread  # noqa: F401
from torch import nn

from unlearnkit.methods import get_method, resolve_config, run_method
from unlearnkit.methods._common import named_convs
from unlearnkit.methods.perturb_finetune import (
    PerturbFinetuneConfig,
    _target_weights,
    add_noise,
    batch_weighted_ce,
    class_weights,
)
from unlearnkit.models import build_model


def _retain(n: int = 32):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 32, 32, generator=g) * 255
    y = torch.randint(0, 10, (n,), generator=g)
    return [(x[i:i + 16], y[i:i + 16]) for i in range(0, n, 16)]


def test_default_class_weights_are_the_published_ones():
    """1.0 for class 0, 0.05 for the nine others."""
    cfg = PerturbFinetuneConfig()
    w = class_weights(10, cfg.main_class, cfg.main_weight, cfg.other_weight)
    assert w.tolist() == pytest.approx([1.0] + [0.05] * 9)
    assert (cfg.noise, cfg.renoise, cfg.epochs, cfg.lr, cfg.weight_decay, cfg.scope) == (
        0.6, 0.005, 4, 7e-4, 5e-4, "first")  # "first": the reading the ResNet-18 board chose


def test_loss_is_batch_mean_ce_times_mean_label_weight():
    """Not torch's weighted CE (normalised by the weights): a batch-level factor."""
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 3.0], [1.0, 1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    w = torch.tensor([1.0, 0.05, 0.05])
    per_example = [-(logits[i].log_softmax(0)[labels[i]]).item() for i in range(3)]
    expected = sum(per_example) / 3 * (1.0 + 0.05 + 0.05) / 3
    assert batch_weighted_ce(logits, labels, w).item() == pytest.approx(expected, rel=1e-6)
    torch_weighted = F.cross_entropy(logits, labels, weight=w).item()
    assert batch_weighted_ce(logits, labels, w).item() != pytest.approx(torch_weighted, rel=1e-3)


def test_scope_picks_all_convs_or_the_first():
    net = build_model("small_cnn")
    convs = [c.weight for _, c in named_convs(net)]
    assert [id(w) for w in _target_weights(net, "all")] == [id(w) for w in convs]
    assert [id(w) for w in _target_weights(net, "first")] == [id(convs[0])]


def test_noise_has_the_requested_std_and_touches_only_its_targets():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 64, 3, bias=False), nn.Conv2d(64, 8, 3, bias=False))
    a, b = (c.weight.detach().clone() for c in net)
    add_noise([net[0].weight], 0.6, torch.Generator().manual_seed(3))
    assert (net[0].weight - a).std().item() == pytest.approx(0.6, rel=0.05)
    assert torch.equal(net[1].weight, b)


def test_first_scope_leaves_later_convs_unperturbed_before_training():
    """With scope 'first', a 0.6 perturbation hits conv 1 only (checked through the run
    with a vanishing learning rate and no weight decay)."""
    torch.manual_seed(0)
    net = build_model("small_cnn")
    original = copy.deepcopy(net.state_dict())
    cfg = resolve_config("perturb_finetune", {"scope": "first", "epochs": 1, "lr": 1e-12,
                                              "weight_decay": 0.0})
    run_method("perturb_finetune", net, _retain(), [], None, seed=0, cfg=cfg)
    (first, c1), *rest = named_convs(net)
    assert (c1.weight - original[f"{first}.weight"]).abs().mean() > 0.3
    for name, conv in rest:
        assert (conv.weight - original[f"{name}.weight"]).abs().max() < 1e-6, name


def test_retain_only_method():
    assert get_method("perturb_finetune").needs_forget is False


@pytest.mark.parametrize("bad", [{"noise": 0.0}, {"renoise": -1.0}, {"other_weight": 0.0},
                                 {"scope": "conv1"}, {"schedule": "linear"}, {"main_class": -1}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        resolve_config("perturb_finetune", bad)


def test_main_class_outside_the_network_is_refused_before_any_change():
    net = build_model("small_cnn")
    before = copy.deepcopy(net.state_dict())
    with pytest.raises(ValueError, match="main_class"):
        run_method("perturb_finetune", net, _retain(), [], None, seed=0,
                   cfg=resolve_config("perturb_finetune", {"main_class": 10}))
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_a_network_without_convolutions_is_refused():
    class NoConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 32 * 32, 10)

        def forward(self, x):
            return self.fc(x.flatten(1))

    with pytest.raises(ValueError, match="no Conv2d"):
        run_method("perturb_finetune", NoConv(), _retain(), [], None, seed=0,
                   cfg=resolve_config("perturb_finetune"))
