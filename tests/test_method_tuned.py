"""The seed methods' tuned variants: shrink-and-perturb does what it says, a variant with
its additions switched off is exactly the published method, and the published settings
are untouched."""

from __future__ import annotations

import copy

import pytest
import torch
from method_fixtures import dict_batches, one_thread  # noqa: F401

from unlearnkit.methods import get_method, resolve_config, run_method
from unlearnkit.methods._common import generator
from unlearnkit.methods._tuned import perturbed_weights, shrink_perturb
from unlearnkit.models import build_model

VARIANTS = {"bad_teacher_tuned": ("bad_teacher", "sample"), "unsir_tuned": ("unsir", "sample"),
            "linear_filtration_tuned": ("linear_filtration", "class")}
OFF = {"shrink": 1.0, "perturb": 0.0, "polish_epochs": 0, "calibration": 1.0,
       "calibration_jitter": 0.0}
TUNED_FIELDS = set(OFF) | {"polish_lr"}
OWN_OFF = {"linear_filtration_tuned": {"removed_row": "constant"}}  # a variant's own additions
OWN_FIELDS = {"linear_filtration_tuned": {"removed_row", "relearn_epochs", "relearn_lr",
                                           "relearn_weight_decay"}}


def _net():
    torch.manual_seed(0)
    return build_model("small_cnn")


def test_shrink_without_noise_scales_every_conv_and_linear_weight():
    net = _net()
    before = [w.clone() for w in perturbed_weights(net)]
    bn = copy.deepcopy([m.weight for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    shrink_perturb(net, 0.5, 0.0, generator(0))
    after = perturbed_weights(net)
    assert len(after) >= 3
    assert all(torch.allclose(a, 0.5 * b) for a, b in zip(after, before))
    bn_after = [m.weight for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(a, b) for a, b in zip(bn_after, bn)), "BatchNorm must be left alone"


def test_the_noise_is_scaled_to_each_tensors_spread_and_seeded():
    net, twin = _net(), _net()
    before = [w.clone() for w in perturbed_weights(net)]
    shrink_perturb(net, 1.0, 0.5, generator(3))
    shrink_perturb(twin, 1.0, 0.5, generator(3))
    for b, a, t in zip(before, perturbed_weights(net), perturbed_weights(twin)):
        assert torch.equal(a, t), "same seed, same noise"
        if b.numel() > 100:
            ratio = float((a - b).detach().std() / b.std().detach())
            assert 0.4 < ratio < 0.6, ratio
    other = _net()
    shrink_perturb(other, 1.0, 0.5, generator(4))
    assert not torch.equal(perturbed_weights(other)[0], perturbed_weights(net)[0])


def _loaders(scenario):
    if scenario == "class":
        retain = dict_batches([i % 10 for i in range(60) if i % 10 != 3], seed=1, size=16)
        forget = dict_batches([3] * 12, seed=2, size=16)
    else:
        retain = dict_batches([i % 10 for i in range(48)], seed=1, size=16)
        forget = dict_batches([i % 10 for i in range(8)], seed=2, size=16)
    return retain, forget, dict_batches([i % 10 for i in range(20)], seed=5, size=16)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_variant_with_its_additions_off_is_the_published_method(variant):
    published, scenario = VARIANTS[variant]
    quick = get_method(published).config.quick().changed()
    start = _net().state_dict()
    out = {}
    for name, cfg in ((published, resolve_config(published, quick)),
                      (variant, resolve_config(variant,
                                               {**quick, **OFF, **OWN_OFF.get(variant, {})}))):
        net = _net()
        net.load_state_dict(copy.deepcopy(start))
        out[name] = run_method(name, net, *_loaders(scenario), seed=2, cfg=cfg,
                               scenario_kind=scenario).state_dict()
    a, b = out[published], out[variant]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_published_defaults_are_untouched(variant):
    published, _ = VARIANTS[variant]
    base = get_method(published).config().to_dict()
    tuned = get_method(variant).config().to_dict()
    assert {k: tuned[k] for k in base} == base
    assert set(tuned) - set(base) == TUNED_FIELDS | OWN_FIELDS.get(variant, set()), \
        "a variant's field may not shadow one of the published method's"


def test_deterministic_linear_filtration_varies_by_seed_when_tuned():
    retain, forget, val = _loaders("class")
    nets = []
    for seed in (0, 1):
        net = _net()
        cfg = resolve_config("linear_filtration_tuned", {"polish_epochs": 0})
        nets.append(run_method("linear_filtration_tuned", net, retain, forget, val, seed=seed,
                               cfg=cfg, scenario_kind="class").state_dict())
    assert any(not torch.equal(nets[0][k], nets[1][k]) for k in nets[0])


def test_calibration_scales_the_logits_by_a_seeded_factor_and_keeps_the_argmax():
    from unlearnkit.methods._tuned import calibrate

    x = torch.rand(6, 3, 32, 32) * 255
    nets = {}
    for seed in (0, 0, 1):
        net = _net().eval()
        with torch.no_grad():
            before = net(x)
        calibrate(net, seed=seed, temperature=1.5, jitter=0.2, method="test")
        with torch.no_grad():
            after = net(x)
        ratio = after / before
        assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), rtol=1e-4)
        assert torch.equal(after.argmax(1), before.argmax(1))
        nets.setdefault(seed, []).append(float(ratio.flatten()[0]))
    assert nets[0][0] == nets[0][1] != nets[1][0], nets
    assert 0.3 < nets[0][0] < 1.0


def test_calibration_off_needs_no_head_and_on_names_the_missing_one():
    from unlearnkit.methods._tuned import calibrate

    headless = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    assert calibrate(headless, seed=0, temperature=1.0, jitter=0.0, method="m") is headless
    with pytest.raises(ValueError, match="linear head at net.fc"):
        calibrate(headless, seed=0, temperature=1.5, jitter=0.0, method="m")


def _relearnt(seed, epochs=3, lr=0.05):
    from unlearnkit.methods.linear_filtration_tuned import relearn_removed_rows

    net = _net()
    retain, _, _ = _loaders("class")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    relearn_removed_rows(net, retain, [3], epochs=epochs, lr=lr, seed=seed)
    return before, net


def test_relearning_redraws_only_the_removed_rows_and_is_seeded():
    before, net = _relearnt(0)
    after = net.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed == {"fc.weight", "fc.bias"}, changed
    kept = [c for c in range(10) if c != 3]
    assert torch.equal(after["fc.weight"][kept], before["fc.weight"][kept])
    assert torch.equal(after["fc.bias"][kept], before["fc.bias"][kept])
    assert not torch.equal(after["fc.weight"][3], before["fc.weight"][3])
    again, other = _relearnt(0)[1].state_dict(), _relearnt(1)[1].state_dict()
    assert torch.equal(again["fc.weight"], after["fc.weight"]), "same seed, same rows"
    assert not torch.equal(other["fc.weight"][3], after["fc.weight"][3])


def test_relearning_pushes_the_removed_logit_below_the_kept_ones_on_retain():
    from unlearnkit.methods.linear_filtration_tuned import penultimate_features

    retain, _, _ = _loaders("class")
    gaps = []
    for epochs in (1, 40):
        _, net = _relearnt(0, epochs=epochs)
        feats, _ = penultimate_features(net, net.fc, retain)
        with torch.no_grad():
            logits = net.fc(feats)
        others = torch.cat([logits[:, :3], logits[:, 4:]], 1).max(1).values
        gaps.append(float((others - logits[:, 3]).mean()))
    assert gaps[1] > gaps[0] and gaps[1] > 0, gaps


def test_linear_filtration_tuned_relearns_by_default_and_no_run_pins_the_logit():
    retain, forget, val = _loaders("class")
    cfg = resolve_config("linear_filtration_tuned", {"polish_epochs": 0, "perturb": 0.0})
    assert cfg.removed_row == "relearn"
    net = _net()
    run_method("linear_filtration_tuned", net, retain, forget, val, seed=0, cfg=cfg,
               scenario_kind="class")
    assert float(net.fc.bias[3].detach()) != cfg.removed_logit
    assert float(net.fc.weight[3].detach().abs().sum()) > 0, "a relearnt row is not the pinned zero row"
