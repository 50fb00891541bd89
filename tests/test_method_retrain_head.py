"""retrain_head (EU-k): where each network is cut, that only the head changes, that the
result does not depend on the original head (exact unlearning of the head), and that a
network it cannot cut is refused with its name."""

from __future__ import annotations

import copy

import pytest
import torch
from method_fixtures import dict_batches, one_thread  # noqa: F401

from unlearnkit.methods import resolve_config, run_method
from unlearnkit.methods.retrain_head import split_head
from unlearnkit.models import build_model

RETAIN = dict_batches([i % 10 for i in range(40)])
QUICK = {"epochs": 2}
CUTS = [("small_cnn_mlp", "auto", ("features.2.", "hidden.", "fc.")),
        ("small_cnn_mlp", "hidden", ("hidden.", "fc.")),
        ("small_cnn_mlp", "fc", ("fc.",)),
        ("small_cnn_mlp", "features.1", ("features.1.", "features.2.", "hidden.", "fc.")),
        ("small_cnn", "auto", ("features.2.", "fc.")),
        ("small_cnn", "fc", ("fc.",)),
        ("small_cnn", "features.2", ("features.2.", "fc.")),
        ("resnet18", "auto", ("layer4.", "fc.")),
        ("resnet18", "layer3", ("layer3.", "layer4.", "fc.")),
        ("resnet18", "fc", ("fc.",)),
        ("timm:test_resnet", "auto", ("fc.",))]


def _net(model: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(model, num_classes=10).eval()


@pytest.mark.parametrize(("model", "part", "_head"), CUTS)
def test_trunk_then_head_is_the_network(model, part, _head):
    net = _net(model)
    x = torch.rand(4, 3, 32, 32) * 255
    split = split_head(net, part)
    with torch.no_grad():
        torch.testing.assert_close(split.head(split.trunk(x)), net(x))


@pytest.mark.parametrize(("model", "part", "head"), CUTS)
def test_only_the_head_changes(model, part, head):
    net = _net(model)
    before = copy.deepcopy(net.state_dict())
    run_method("retrain_head", net, RETAIN, [], None, seed=3,
               cfg=resolve_config("retrain_head", {**QUICK, "first_layer": part}))
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "the head did not change"
    assert all(k.startswith(head) for k in changed), sorted(changed - {
        k for k in changed if k.startswith(head)})
    weights = {k for k in before if k.startswith(head) and k.endswith("weight")}
    assert weights <= changed


@pytest.mark.parametrize(("model", "part"), [("small_cnn_mlp", "auto"), ("resnet18", "auto"),
                                             ("small_cnn_mlp", "hidden")])
def test_the_original_head_does_not_matter(model, part):
    """Two networks that differ only in their heads end identical: the head is retrained
    from scratch, so nothing it learnt (the forget set included) survives."""
    a, b = _net(model, 0), _net(model, 0)
    split_b = split_head(b, part)
    with torch.no_grad():
        for module in split_b.modules:
            for p in module.parameters():
                p.add_(torch.randn_like(p))
    cfg = resolve_config("retrain_head", {**QUICK, "first_layer": part})
    for net in (a, b):
        run_method("retrain_head", net, RETAIN, [], None, seed=5, cfg=cfg)
    x = torch.rand(4, 3, 32, 32) * 255
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(x), b.eval()(x))


def test_runs_differ_by_seed_through_the_fresh_head():
    cfg = resolve_config("retrain_head", {**QUICK, "epochs": 1})
    heads = []
    for seed in (1, 1, 2):
        net = _net("small_cnn_mlp")
        torch.manual_seed(99)  # the global RNG must not matter
        run_method("retrain_head", net, RETAIN, [], None, seed=seed, cfg=cfg)
        heads.append(net.hidden.weight.detach().clone())
    assert torch.equal(heads[0], heads[1])
    assert not torch.equal(heads[0], heads[2])


def test_a_network_it_cannot_cut_is_refused_with_its_name():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    with pytest.raises(ValueError, match="cut model Sequential"):
        run_method("retrain_head", net, RETAIN, [], None, seed=0,
                   cfg=resolve_config("retrain_head", QUICK))


def test_a_layer_the_model_lacks_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="'layer4' is not a layer of model SmallCNNMLP.*"
                                         "features.1, features.2, flatten, hidden, act, fc"):
        run_method("retrain_head", _net("small_cnn_mlp"), RETAIN, [], None, seed=0,
                   cfg=resolve_config("retrain_head", {**QUICK, "first_layer": "layer4"}))
    with pytest.raises(ValueError, match="'layer4' is not a layer of model ResNet"):
        split_head(_net("timm:test_resnet"), "layer4")


def test_an_empty_retain_set_is_refused():
    with pytest.raises(ValueError, match="retain loader is empty"):
        run_method("retrain_head", _net("small_cnn_mlp"), [], [], None, seed=0,
                   cfg=resolve_config("retrain_head", QUICK))


def test_keep_adds_that_share_of_the_original_weights_to_the_fresh_draw():
    still = {"epochs": 1, "lr": 1e-12}  # Adam moves each weight by about 1e-12
    original = _net("small_cnn_mlp")
    fresh, mixed = copy.deepcopy(original), copy.deepcopy(original)
    run_method("retrain_head", fresh, RETAIN, [], None, seed=2,
               cfg=resolve_config("retrain_head", still))
    run_method("retrain_head", mixed, RETAIN, [], None, seed=2,
               cfg=resolve_config("retrain_head", {**still, "keep": 0.5}))
    for name in ("hidden.weight", "fc.weight", "features.2.0.weight"):
        expected = fresh.state_dict()[name] + 0.5 * original.state_dict()[name]
        torch.testing.assert_close(mixed.state_dict()[name], expected, atol=1e-6, rtol=0)
    assert torch.equal(mixed.features[0][0].weight, original.features[0][0].weight)


def test_distill_changes_the_run():
    outs = []
    for distill in (0.0, 1.0):
        net = _net("small_cnn_mlp")
        run_method("retrain_head", net, RETAIN, [], None, seed=2,
                   cfg=resolve_config("retrain_head", {"epochs": 1, "distill": distill}))
        outs.append(net.fc.weight.detach().clone())
    assert not torch.equal(*outs)
