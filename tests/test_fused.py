"""Fused K-model training ends where K one-model runs end, and evaluates the same.

The reference is :func:`unlearnkit.train.train` per seed. Adam turns a gradient's sign
into a step of about ``lr``, so where a gradient element is at rounding level the two
runs can step apart by up to ``2 * lr`` there: for resnet18 the check is that all but a
sliver of the elements agree to float tolerance and none is further apart than a few
such steps (a wrong data order, a mixed loss or shared BatchNorm statistics would
move most elements).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from unlearnkit.data.base import ImageSet
from unlearnkit.fused_training import (
    CONV_FORMS,
    default_chunk,
    predict_logits_many,
    train_many,
    tune_convs,
)
from unlearnkit.models import build_model, load_state
from unlearnkit.stacked_layers import StackedConv2d, build_wide, widen
from unlearnkit.train import TrainConfig, init_model, predict_logits, train

CFG = TrainConfig(epochs=2)


def make_data(n: int, seed: int = 0) -> ImageSet:
    """Random 0-255 images with labels; class 9 absent, so a class weight is 0."""
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.rand(n, 3, 32, 32, generator=g) * 255,
                    torch.randint(0, 9, (n,), generator=g))


def one_by_one(name: str, data: ImageSet, seeds: list[int], cfg: TrainConfig,
               device: str = "cpu") -> list[dict]:
    """The reference: each seed trained alone with the recipe."""
    return [{k: v.cpu() for k, v in train(init_model(name, s), data, cfg, seed=s, device=device,
                                          progress=False).state_dict().items()}
            for s in seeds]


def mismatch(state: dict, ref: dict, rtol: float = 1e-4, atol: float = 1e-5) -> tuple[float, float]:
    """Fraction of elements outside (rtol, atol), and the largest parameter difference.

    Running statistics count in the fraction only: they follow the inputs' 0-255 scale,
    so an ``lr``-sized step in the first layer moves them by more than ``lr``.
    """
    bad = total = 0
    worst = 0.0
    assert state.keys() == ref.keys()
    for key, r in ref.items():
        a, b = state[key].double(), r.double()
        assert a.shape == b.shape, key
        bad += int((~torch.isclose(a, b, rtol=rtol, atol=atol)).sum())
        total += a.numel()
        if "running_" not in key:
            worst = max(worst, float((a - b).abs().max()))
    return bad / total, worst


@pytest.mark.parametrize("name", ["small_cnn", "small_cnn_mlp"])
def test_cpu_nets_match_one_by_one_including_chunks(name):
    """The flattened features of small_cnn_mlp keep model k's block contiguous."""
    data, seeds = make_data(128), [3, 7, 11]
    fused = train_many(name, data, seeds, CFG, chunk=2, progress=False)  # chunks of 2, 1
    for state, ref in zip(fused, one_by_one(name, data, seeds, CFG)):
        frac, worst = mismatch(state, ref)
        assert frac < 1e-3 and worst < CFG.lr, (frac, worst)


def test_resnet18_matches_one_by_one():
    data, seeds = make_data(64, 1), [5, 6]
    fused = train_many("resnet18", data, seeds, CFG, progress=False)
    refs = one_by_one("resnet18", data, seeds, CFG)
    for state, ref in zip(fused, refs):
        frac, worst = mismatch(state, ref)
        assert frac < 0.02 and worst < 6 * CFG.lr, (frac, worst)
    logits = predict_logits_many("resnet18", fused, data)
    for i, ref in enumerate(refs):
        want = predict_logits(load_state(build_model("resnet18"), ref), data)
        assert np.linalg.norm(logits[i] - want) < 1e-2 * np.linalg.norm(want)


@pytest.mark.parametrize("conv", ["bmm", "hybrid", "auto"])
def test_other_conv_forms_match_one_by_one(conv):
    data, seeds = make_data(64, 4), [8, 9]
    fused = train_many("small_cnn", data, seeds, CFG, conv=conv, progress=False)
    for state, ref in zip(fused, one_by_one("small_cnn", data, seeds, CFG)):
        frac, worst = mismatch(state, ref)
        assert frac < 1e-3 and worst < CFG.lr, (frac, worst)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [(3, 8, 7, 2, 3, 1, False), (4, 6, 3, 1, 1, 1, True),
                                   (4, 6, 1, 2, 0, 1, False), (5, 7, 3, 2, 2, 2, True)])
def test_bmm_and_hybrid_conv_equal_grouped_conv(shape, channels_last):
    """Outputs and the gradients of input, weight and bias, for every form."""
    cin, cout, size, stride, pad, dil, bias = shape
    torch.manual_seed(0)
    conv = StackedConv2d(3, nn.Conv2d(cin, cout, size, stride, pad, dil, bias=bias))
    x = torch.randn(2, 3 * cin, 9, 11)
    if channels_last:
        conv, x = conv.to(memory_format=torch.channels_last), x.to(
            memory_format=torch.channels_last)
    results = {}
    for impl in ("grouped", "bmm", "hybrid"):
        conv.impl = impl
        xi = x.clone().requires_grad_()
        y = conv(xi)  # [2, 3*cout, Ho, Wo]
        wrt = [xi, conv.weight] + ([conv.bias] if bias else [])
        results[impl] = (y, *torch.autograd.grad(y.square().sum(), wrt))
    for impl in ("bmm", "hybrid"):
        for a, b in zip(results["grouped"], results[impl]):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4, msg=impl)
    assert results["bmm"][0].is_contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_hybrid_conv_without_input_gradient():
    """The first layer (the images): only the weight gradient is computed, and it is right."""
    torch.manual_seed(1)
    conv = StackedConv2d(2, nn.Conv2d(3, 4, 3, 1, 1))
    x = torch.randn(5, 6, 8, 8)
    grads = {}
    for impl in ("grouped", "hybrid"):
        conv.impl = impl
        grads[impl] = torch.autograd.grad(conv(x).square().sum(), [conv.weight, conv.bias])
    for a, b in zip(grads["grouped"], grads["hybrid"]):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_predict_logits_many_equals_predict_logits():
    data = make_data(70, 2)
    nets = [init_model("small_cnn", s) for s in range(3)]
    for i, net in enumerate(nets):  # distinct running statistics per model
        net.train()
        net(data.images[i * 20:(i + 1) * 20])
    got = predict_logits_many("small_cnn", [n.state_dict() for n in nets], data,
                              batch_size=32, chunk=2)
    assert got.shape == (3, 70, 10) and got.dtype == np.float32
    for i, net in enumerate(nets):
        np.testing.assert_allclose(got[i], predict_logits(net, data), rtol=1e-4, atol=1e-4)


def test_lanes_train_the_same_models_as_chunks_in_turn():
    """Chunks trained side by side (lanes) end exactly as when trained one after another."""
    data, seeds = make_data(200, 5), [3, 4, 5]  # chunks [3, 4] and [5]: lanes of unequal K
    cfg = TrainConfig(epochs=2)
    in_turn = train_many("small_cnn", data, seeds, cfg, chunk=2, lanes=1, progress=False)
    side_by_side = train_many("small_cnn", data, seeds, cfg, chunk=2, lanes=2, progress=False)
    assert len(side_by_side) == 3
    for a, b in zip(in_turn, side_by_side):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert not torch.equal(side_by_side[0]["fc.weight"], side_by_side[2]["fc.weight"])


def test_states_load_into_the_plain_model():
    states = train_many("small_cnn", make_data(64), [0], TrainConfig(epochs=1), progress=False)
    load_state(build_model("small_cnn"), states[0])


def test_bad_input_is_explained():
    data = make_data(8)
    with pytest.raises(ValueError, match="seeds is empty"):
        train_many("small_cnn", data, [], progress=False)
    with pytest.raises(ValueError, match="conv must be"):
        train_many("small_cnn", data, [1], conv="winograd", progress=False)
    with pytest.raises(ValueError, match="chunk"):
        train_many("small_cnn", data, [1], chunk=0, progress=False)
    with pytest.raises(ValueError, match="lanes"):
        train_many("small_cnn", data, [1], lanes=0, progress=False)
    with pytest.raises(ValueError, match="cannot fuse layer"):
        widen(nn.Sequential(nn.Conv2d(3, 4, 3), nn.LayerNorm(4)), 2)


def test_default_chunk_per_device():
    assert default_chunk("small_cnn", "cpu") >= 2
    assert default_chunk("resnet18", "cuda") >= 32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graph_matches_one_by_one():
    """On CUDA (fp32, TF32 off): graph-replayed fused training vs one-by-one and eager."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        data, seeds = make_data(300, 3), [1, 2]  # 5 batches, the last one short
        cfg = TrainConfig(epochs=2, amp=False)
        graphed = train_many("small_cnn", data, seeds, cfg, device="cuda", progress=False)
        eager = train_many("small_cnn", data, seeds, cfg, device="cuda", cuda_graph=False,
                           conv="bmm", progress=False)
        refs = one_by_one("small_cnn", data, seeds, cfg, device="cuda")
        for g, e, r in zip(graphed, eager, refs):
            assert mismatch(g, e)[0] < 0.02
            frac, worst = mismatch(g, r)
            assert frac < 0.02 and worst < 8 * cfg.lr, (frac, worst)
        lanes = train_many("small_cnn", data, seeds, cfg, device="cuda", chunk=1, lanes=2,
                           progress=False)  # two graphs replayed on two streams
        hybrid = train_many("small_cnn", data, seeds, cfg, device="cuda", conv="hybrid",
                            progress=False)
        auto = train_many("small_cnn", data, seeds, cfg, device="cuda", conv="auto",
                          progress=False)  # forms chosen by timing graph replays
        for other in (lanes, hybrid, auto):
            for g, r in zip(other, refs):
                frac, worst = mismatch(g, r)
                assert frac < 0.02 and worst < 8 * cfg.lr, (frac, worst)
        for conv in ("grouped", "hybrid"):  # bf16 autocast + channels_last + graphs
            bf16 = train_many("resnet18", data, seeds, TrainConfig(epochs=1), device="cuda",
                              conv=conv, progress=False)
            assert all(torch.isfinite(v.float()).all() for s in bf16 for v in s.values()), conv
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def test_hybrid_conv_under_autocast_gives_parameter_dtype_gradients():
    """Under bf16 autocast (on the CPU here; CUDA in training) the casts sit outside the
    custom Function, so the weight gradient comes back float32, near the grouped one's."""
    torch.manual_seed(2)
    conv = StackedConv2d(2, nn.Conv2d(4, 4, 3, 1, 1))
    x = torch.randn(3, 8, 8, 8, requires_grad=True)
    grads = {}
    for impl in ("grouped", "hybrid"):
        conv.impl = impl
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = conv(x)
        assert y.dtype == torch.bfloat16
        grads[impl] = torch.autograd.grad(y.float().square().sum(), [x, conv.weight, conv.bias])
    for a, b in zip(grads["grouped"], grads["hybrid"]):
        assert b.dtype == torch.float32
        torch.testing.assert_close(b, a, rtol=0.05, atol=0.05 * float(a.abs().max()))


def test_tune_convs_sets_a_known_form_on_every_layer():
    """``graphed`` timing falls back to the eager clock off CUDA; every layer gets a form."""
    states = [init_model("small_cnn", s).state_dict() for s in (0, 1)]
    with torch.device("meta"):
        template = build_model("small_cnn")
    net = build_wide(template, states, "cpu").train()
    x = make_data(16).images.repeat(1, 2, 1, 1)  # [16, 2*3, 32, 32]
    chosen = tune_convs(net, x, amp=False, reps=1, graphed=True)
    convs = [n for n, m in net.named_modules() if isinstance(m, StackedConv2d)]
    assert sorted(chosen) == sorted(convs) and set(chosen.values()) <= set(CONV_FORMS)
    assert all(net.get_submodule(n).impl == impl for n, impl in chosen.items())
