"""reset_distill (KDE): which layers are reset and how, the distillation losses, the
warm-up's data (validation, retain fallback, class restriction), and bad models refused."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from method_fixtures import CountingLoader, dict_batches, one_thread  # noqa: F401
from torch import nn

from unlearnkit.methods import resolve_config, run_method
from unlearnkit.methods.reset_distill import (
    class_batches,
    finetune_loss,
    kl_soft,
    layers_to_reset,
    soft_cross_entropy,
)
from unlearnkit.models import build_model

RETAIN = dict_batches([i % 10 for i in range(40)])
NO_TRAINING = {"warmup_epochs": 0, "epochs": 0}


@pytest.mark.parametrize(("model", "conv", "head"), [("small_cnn", "features.0.0", "fc"),
                                                     ("resnet18", "conv1", "fc")])
def test_only_the_first_conv_and_fc_are_reset_in_their_default_range(model, conv, head):
    torch.manual_seed(0)
    net = build_model(model)
    with torch.no_grad():  # move them away from any fresh init
        for name, p in net.named_parameters():
            if name.startswith((conv + ".", head + ".")):
                p.fill_(0.7)
    before = copy.deepcopy(net.state_dict())
    assert layers_to_reset(net)[0] == conv
    run_method("reset_distill", net, RETAIN, [], None, seed=4,
               cfg=resolve_config("reset_distill", NO_TRAINING))
    after = net.state_dict()
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    expected = sorted(k for k in before if k.startswith((conv + ".", head + ".")))
    assert changed == expected
    for prefix, layer in ((conv, net.get_submodule(conv)), (head, net.get_submodule(head))):
        fan_in = layer.weight[0].numel()  # reset_parameters: kaiming_uniform(a=sqrt(5))
        assert (layer.weight.abs() <= 1 / math.sqrt(fan_in) + 1e-7).all(), prefix
        assert layer.weight.abs().max() > 0.5 / math.sqrt(fan_in), prefix


def test_the_reset_is_seeded():
    outs = []
    for seed in (1, 1, 2):
        torch.manual_seed(0)
        net = build_model("small_cnn")
        torch.manual_seed(123)  # the global RNG must not matter
        run_method("reset_distill", net, RETAIN, [], None, seed=seed,
                   cfg=resolve_config("reset_distill", NO_TRAINING))
        outs.append(net.fc.weight.detach().clone())
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


def test_models_without_the_reset_layers_are_refused_naming_layer_and_class():
    class NoConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 32 * 32, 10)

        def forward(self, x):
            return self.fc(x.flatten(1))

    class NoHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 10, 3)

        def forward(self, x):
            return self.conv(x).mean(dim=(2, 3))

    cfg = resolve_config("reset_distill")
    for net, words in ((NoConv(), r"first convolution .*model NoConv has no Conv2d"),
                       (NoHead(), r"linear head fc, but model NoHead has no nn.Linear")):
        before = copy.deepcopy(net.state_dict())
        with pytest.raises(ValueError, match=words):
            run_method("reset_distill", net, RETAIN, [], None, seed=0, cfg=cfg)
        assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_kl_and_soft_cross_entropy_formulas():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 10, generator=g), torch.randn(6, 10, generator=g) * 3
    y = torch.randint(0, 10, (6,), generator=g)
    T = 5.0
    kl = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
    assert kl_soft(s, t, T).item() == pytest.approx(kl.item(), rel=1e-5)
    p = F.softmax(t / T, 1)
    h = -(p * p.log()).sum(1).mean()
    assert soft_cross_entropy(s, t, T).item() == pytest.approx((kl + h).item(), rel=1e-5)
    total = finetune_loss(s, t, y, T)
    assert total.item() == pytest.approx((2 * kl + h + F.cross_entropy(s, y)).item(), rel=1e-5)
    assert kl_soft(t, t, T).item() == pytest.approx(0.0, abs=1e-6)


def test_class_batches_keep_only_the_chosen_labels_at_the_loader_batch_size():
    loader = dict_batches([i % 10 for i in range(200)], size=16)
    gen = torch.Generator().manual_seed(0)
    got = list(class_batches(loader, None, gen, [0, 1]))
    labels = torch.cat([y for _, y in got])
    assert set(labels.tolist()) == {0, 1} and len(labels) == 40
    assert [len(y) for _, y in got] == [16, 16, 8]
    everything = torch.cat([y for _, y in class_batches(loader, None, gen, [])])
    assert len(everything) == 200


def test_warmup_runs_on_validation_or_falls_back_to_retain():
    cfg = resolve_config("reset_distill", {"warmup_epochs": 2, "epochs": 1})
    retain, val = CountingLoader(RETAIN), CountingLoader(dict_batches([i % 10 for i in range(24)], seed=1))
    run_method("reset_distill", build_model("small_cnn"), retain, [], val, seed=0, cfg=cfg)
    assert (val.passes, retain.passes) == (2, 1)
    retain = CountingLoader(RETAIN)
    run_method("reset_distill", build_model("small_cnn"), retain, [], None, seed=0, cfg=cfg)
    assert retain.passes == 3


def test_warmup_classes_are_checked():
    for bad in (["a"], [-1], [True], 3):
        with pytest.raises(ValueError, match="warmup_classes"):
            resolve_config("reset_distill", {"warmup_classes": bad})
    cfg = resolve_config("reset_distill", {"warmup_classes": [0, 1], "epochs": 1})
    assert cfg.warmup_classes == [0, 1]
    net = build_model("small_cnn")
    before = copy.deepcopy(net.state_dict())
    no_zero_one = dict_batches([5, 6, 7] * 4)
    with pytest.raises(ValueError, match=r"validation data holds no images of warmup_classes"):
        run_method("reset_distill", net, RETAIN, [], no_zero_one, seed=0, cfg=cfg)
    with pytest.raises(ValueError, match=r"retain \(no validation loader\)"):
        run_method("reset_distill", net, no_zero_one, [], None, seed=0, cfg=cfg)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    run_method("reset_distill", net, RETAIN, [], RETAIN, seed=0, cfg=cfg)  # 0/1 present: runs


def test_an_empty_validation_set_is_refused_before_any_change():
    cfg = resolve_config("reset_distill", {"warmup_epochs": 1, "epochs": 1})
    net = build_model("small_cnn")
    before = copy.deepcopy(net.state_dict())
    with pytest.raises(ValueError, match="validation set is empty.*warmup_epochs=0"):
        run_method("reset_distill", net, RETAIN, [], [], seed=0, cfg=cfg)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    no_warmup = resolve_config("reset_distill", {"warmup_epochs": 0, "epochs": 1})
    run_method("reset_distill", net, RETAIN, [], [], seed=0, cfg=no_warmup)  # nothing to refuse
