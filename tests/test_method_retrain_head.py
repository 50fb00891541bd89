"""retrain_head (EU-k): where each network is cut, that only the head changes, that the
result does not depend on the original head (exact unlearning of the head), and that a
network it cannot cut is refused with its name."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from method_fixtures import dict_batches, one_thread  # noqa: F401

from unlearnkit.methods import resolve_config, run_method
from unlearnkit.methods.retrain_head import matching_temperature, mean_confidence, split_head
from unlearnkit.models import build_model

RETAIN = dict_batches([i % 10 for i in range(40)])
QUICK = {"epochs": 2}
CUTS = [("small_cnn_mlp", "auto", ("features.2.", "hidden.", "fc.")),
        ("small_cnn_mlp", "hidden", ("hidden.", "fc.")),
        ("small_cnn_mlp", "head", ("hidden.", "fc.")),
        ("small_cnn", "head", ("fc.",)),
        ("resnet18", "head", ("fc.",)),
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
                                         "features.1, features.2, flatten, hidden, act, fc \\(or 'auto', 'head'\\)"):
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


def test_trunk_noise_moves_the_trunk_weights_but_not_batchnorm():
    original = _net("small_cnn_mlp")
    noisy = copy.deepcopy(original)
    run_method("retrain_head", noisy, RETAIN, [], None, seed=4,
               cfg=resolve_config("retrain_head", {"epochs": 1, "trunk_noise": 0.2,
                                                   "recalibrate_bn": False}))
    for name in ("features.0.0.weight", "features.1.0.weight"):
        delta = noisy.state_dict()[name] - original.state_dict()[name]
        ratio = float(delta.std() / original.state_dict()[name].std())
        assert 0.1 < ratio < 0.3, (name, ratio)
    for name in ("features.0.1.weight", "features.0.1.bias", "features.0.1.running_mean",
                 "features.1.1.running_var"):
        assert torch.equal(noisy.state_dict()[name], original.state_dict()[name]), name


def test_noise_from_leaves_the_layers_before_it_as_trained():
    original = _net("resnet18")
    noisy = copy.deepcopy(original)
    run_method("retrain_head", noisy, RETAIN, [], None, seed=4,
               cfg=resolve_config("retrain_head", {"epochs": 1, "trunk_noise": 0.2,
                                                   "first_layer": "head",
                                                   "noise_from": "layer3"}))
    before, after = original.state_dict(), noisy.state_dict()
    for name in ("conv1.weight", "layer1.0.conv1.weight", "layer2.1.conv2.weight"):
        assert torch.equal(after[name], before[name]), name
    for name in ("layer3.0.conv1.weight", "layer4.1.conv2.weight", "layer3.0.downsample.0.weight"):
        ratio = float((after[name] - before[name]).std() / before[name].std())
        assert 0.1 < ratio < 0.3, (name, ratio)


def test_noise_from_first_is_the_whole_trunk_as_before():
    """'first' (the default) is the whole trunk; a later layer spares the ones before."""
    nets = [_net("small_cnn_mlp") for _ in range(2)]
    for net, extra in zip(nets, ({}, {"noise_from": "first"})):
        run_method("retrain_head", net, RETAIN, [], None, seed=4,
                   cfg=resolve_config("retrain_head", {"epochs": 1, "trunk_noise": 0.2, **extra}))
    assert torch.equal(nets[0].features[0][0].weight, nets[1].features[0][0].weight)
    part = _net("small_cnn_mlp")
    run_method("retrain_head", part, RETAIN, [], None, seed=4,
               cfg=resolve_config("retrain_head", {"epochs": 1, "trunk_noise": 0.2,
                                                   "noise_from": "features.1"}))
    assert torch.equal(part.features[0][0].weight, _net("small_cnn_mlp").features[0][0].weight)
    assert not torch.equal(part.features[1][0].weight, _net("small_cnn_mlp").features[1][0].weight)


def test_noise_from_outside_the_trunk_is_refused_with_the_names():
    with pytest.raises(ValueError, match="noise_from 'fc' is not a trunk layer of model "
                                         "ResNet cut before 'layer4'; choose one of: first, conv1"):
        run_method("retrain_head", _net("resnet18"), RETAIN, [], None, seed=0,
                   cfg=resolve_config("retrain_head", {**QUICK, "trunk_noise": 0.1,
                                                       "noise_from": "fc"}))


def test_recalibrate_bn_re_estimates_the_trunk_statistics_on_retain():
    net = _net("small_cnn_mlp")
    run_method("retrain_head", net, RETAIN, [], None, seed=4,
               cfg=resolve_config("retrain_head", {"epochs": 1, "trunk_noise": 0.2}))
    x = torch.cat([b["image"] for b in RETAIN])
    with torch.no_grad():
        conv = net.features[0][0](x)  # the noisy first conv's outputs, before its BatchNorm
    bn = net.features[0][1]
    torch.testing.assert_close(bn.running_mean, conv.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-3)
    assert bn.momentum == 0.1 and not bn.training


def test_trunk_noise_differs_by_seed_and_repeats_for_a_seed():
    cfg = resolve_config("retrain_head", {"epochs": 1, "trunk_noise": 0.1})
    trunks = []
    for seed in (1, 1, 2):
        net = _net("small_cnn_mlp")
        run_method("retrain_head", net, RETAIN, [], None, seed=seed, cfg=cfg)
        trunks.append(net.features[0][0].weight.detach().clone())
    assert torch.equal(trunks[0], trunks[1])
    assert not torch.equal(trunks[0], trunks[2])


def test_matching_temperature_reaches_the_target_confidence():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 10, generator=g) * 4
    labels = logits.argmax(1)  # mostly right, like a trained net: confidence falls with T
    labels[:20] = torch.randint(0, 10, (20,), generator=g)
    for target in (0.5, 2.0, 6.0):
        t = matching_temperature(logits, labels, target)
        assert mean_confidence(logits / t, labels) == pytest.approx(target, abs=1e-4)
    assert matching_temperature(logits, labels, 1e6) == pytest.approx(math.exp(-4))


def _learnable(n: int, seed: int) -> list[dict]:
    """Dict batches a small CNN learns at once: each class a fixed pattern plus noise."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(10, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255
    y = torch.arange(n) % 10
    x = 0.8 * patterns[y] + 0.2 * torch.rand(n, 3, 32, 32, generator=g) * 255
    return [{"image": x[i:i + 8], "age_group": y[i:i + 8]} for i in range(0, n, 8)]


def test_match_unseen_gives_the_original_confidence_on_validation():
    retain, val = _learnable(80, 1), _learnable(40, 2)
    x = torch.cat([b["image"] for b in val])
    y = torch.cat([b["age_group"] for b in val])
    original = _net("small_cnn_mlp")  # trained first, so that it is right on validation
    run_method("retrain_head", original, retain, [], None, seed=0,
               cfg=resolve_config("retrain_head", {"epochs": 8, "lr": 3e-3, "first_layer": "features.1"}))
    with torch.no_grad():
        target = mean_confidence(original(x), y)
        assert target > 0, "the test's original must be mostly right on validation"
    net = copy.deepcopy(original)
    run_method("retrain_head", net, retain, [], val, seed=1,
               cfg=resolve_config("retrain_head", {"epochs": 6, "match_unseen": True}))
    with torch.no_grad():
        assert mean_confidence(net(x), y) == pytest.approx(target, abs=1e-3)


def test_match_unseen_without_a_validation_loader_is_refused():
    with pytest.raises(ValueError, match="match_unseen needs a validation loader"):
        run_method("retrain_head", _net("small_cnn_mlp"), RETAIN, [], None, seed=0,
                   cfg=resolve_config("retrain_head", {**QUICK, "match_unseen": True}))


def test_calibration_divides_the_logits_by_its_temperature():
    x = torch.rand(4, 3, 32, 32) * 255
    outs = []
    for calibration in (1.0, 2.0):
        net = _net("small_cnn_mlp")
        run_method("retrain_head", net, RETAIN, [], None, seed=2,
                   cfg=resolve_config("retrain_head", {"epochs": 1, "calibration": calibration}))
        with torch.no_grad():
            outs.append(net(x))
    torch.testing.assert_close(outs[1], outs[0] / 2)


def test_dampen_alpha_needs_the_forget_set_and_says_so():
    with pytest.raises(ValueError, match="dampen_alpha > 0 needs forget examples"):
        run_method("retrain_head", _net("small_cnn_mlp"), RETAIN, [], None, seed=0,
                   cfg=resolve_config("retrain_head", {**QUICK, "dampen_alpha": 10.0}))


def test_dampen_alpha_dampens_the_frozen_trunk():
    """SSD first: trunk weights change without any noise, only by shrinking toward 0."""
    original = _net("small_cnn_mlp")
    net = copy.deepcopy(original)
    forget = dict_batches([0, 1, 2, 3], seed=5)
    run_method("retrain_head", net, RETAIN, forget, None, seed=1,
               cfg=resolve_config("retrain_head", {"epochs": 1, "dampen_alpha": 1.0}))
    before, after = original.features[0][0].weight, net.features[0][0].weight
    assert not torch.equal(before, after)
    assert bool((after.abs() <= before.abs() + 1e-7).all())


def test_polish_fine_tunes_the_whole_network_after_the_head():
    plain, polished = _net("small_cnn_mlp"), _net("small_cnn_mlp")
    for net, extra in ((plain, {}), (polished, {"polish_epochs": 1})):
        run_method("retrain_head", net, RETAIN, [], None, seed=6,
                   cfg=resolve_config("retrain_head", {"epochs": 1, "first_layer": "head",
                                                       **extra}))
    first = "features.0.0.weight"
    assert torch.equal(plain.state_dict()[first], _net("small_cnn_mlp").state_dict()[first]), \
        "without polish the trunk stays as trained"
    assert not torch.equal(polished.state_dict()[first], plain.state_dict()[first]), \
        "the polish moves the trunk too"


def test_the_differentiable_confidence_is_the_metrics():
    from unlearnkit.methods.retrain_head import confidence

    logits = torch.randn(12, 10, dtype=torch.float64) * 4
    labels = torch.arange(12) % 10
    ours = confidence(logits, labels).numpy()
    from unlearnkit.metrics.competition import logit_scaled_confidence

    assert ours == pytest.approx(logit_scaled_confidence(logits.numpy(), labels.numpy()),
                                 abs=1e-9)


def _forget_confidences(settings: dict, key: str, weights, forget_batches: int,
                        noise: float) -> list[float]:
    """The forget examples' mean confidence after retrain_head with ``settings`` and
    ``key`` set to each of ``weights``: the forget set is the first ``forget_batches``
    batches of a learnable retain set, validation images carry ``noise`` of uniform noise
    (they look unseen: less confident)."""
    retain = _learnable(80, 1)
    forget = retain[:forget_batches]
    val = [{"image": (1 - noise) * b["image"] + noise * torch.rand_like(b["image"]) * 255,
            "age_group": b["age_group"]} for b in _learnable(40, 2)]
    fx = torch.cat([b["image"] for b in forget])
    fy = torch.cat([b["age_group"] for b in forget])
    confs = []
    for weight in weights:
        net = _net("small_cnn_mlp")
        run_method("retrain_head", net, retain, forget, val, seed=4,
                   cfg=resolve_config("retrain_head", {**settings, key: weight}))
        with torch.no_grad():
            confs.append(mean_confidence(net.eval()(fx), fy))
    return confs


def test_polish_forget_lowers_the_forget_confidence_toward_unseen_data():
    """Forget examples the net was trained on are more confident than the noisier
    validation images; the forget term lowers them, plain polish does not."""
    polish = {"epochs": 20, "lr": 3e-3, "first_layer": "features.1", "polish_epochs": 2,
              "polish_lr": 1e-4,
              "trunk_noise": 0.01}  # re-estimates the untrained net's BatchNorm
    confs = _forget_confidences(polish, "polish_forget", (0.0, 5.0), 2, 0.5)
    assert confs[1] < confs[0] - 2.0, confs


def test_rank_targets_give_each_forget_example_the_validation_value_at_its_rank():
    from unlearnkit.methods.retrain_head import HeadSplit, rank_targets

    lin = torch.nn.Linear(2, 3)
    with torch.no_grad():  # logits = features, so the confidence is z_y - logsumexp(others)
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        lin.bias.zero_()
    split = HeadSplit(lambda x: x, lin, [lin])
    forget_f = torch.tensor([[5.0, 0.0], [9.0, 0.0], [7.0, 0.0]])  # class 0, ranks 0, 2, 1
    forget_y = torch.zeros(3, dtype=torch.long)
    val_f = torch.tensor([[float(v), 0.0] for v in range(-3, 3)] + [[0.0, 4.0]])
    val_y = torch.tensor([0] * 6 + [1])
    target = rank_targets(split, forget_f, forget_y, val_f, val_y)
    from unlearnkit.methods.retrain_head import confidence

    val_conf = confidence(lin(val_f[:6]), val_y[:6])
    expected = torch.quantile(val_conf, torch.tensor([0.5, 2.5, 1.5]) / 3)
    assert torch.allclose(target, expected), (target, expected)
    assert target[1] > target[2] > target[0], "the forget examples keep their order"
    assert lin.training, "the head is left in training mode"


def test_forget_match_lowers_the_forget_confidence_toward_unseen_data():
    """Forget examples in the retain set are memorised by the retrained layers; the
    forget term pulls their confidence down to the noisier validation images'."""
    head = {"epochs": 20, "lr": 3e-3, "first_layer": "features.2"}
    confs = _forget_confidences(head, "forget_match", (0.0, 3.0), 1, 0.6)
    assert confs[1] < confs[0] - 1.0, confs


POLISH_FORGET = ({"polish_epochs": 1, "polish_forget": 1.0}, "polish_forget > 0 acts in the polish")
FORGET_MATCH = ({"forget_match": 1.0}, "forget_match > 0 pulls the forget examples")
MISSING = [(*POLISH_FORGET, {"polish_epochs": 0})] + [
    (*term, extra) for term in (POLISH_FORGET, FORGET_MATCH)
    for extra in ({"val": None}, {"forget": []})]


@pytest.mark.parametrize(("term", "message", "extra"), MISSING)
def test_a_forget_term_without_its_inputs_is_refused(term, message, extra):
    extra = dict(extra)
    forget, val = extra.pop("forget", dict_batches([0, 1, 2, 3], seed=5)), \
        extra.pop("val", dict_batches([0, 1, 2, 3], seed=6))
    with pytest.raises(ValueError, match=message):
        run_method("retrain_head", _net("small_cnn_mlp"), RETAIN, forget, val, seed=0,
                   cfg=resolve_config("retrain_head", {**QUICK, **term, **extra}))
