"""One-pixel convolutions compute what nn.Conv2d computes, and the CPU training uses them
with fused Adam."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unlearnkit.one_pixel_conv import OnePixelConv2d, on_cpu, use_one_pixel_convs
from unlearnkit.train import adam, init_model

# (input size, kernel, stride, padding): the first four give one output pixel
CASES = [(1, 3, 1, 1), (2, 3, 2, 1), (2, 1, 2, 0), (3, 3, 1, 0), (4, 3, 1, 1), (5, 3, 2, 1)]


def _pair(size, k, s, p, bias):
    torch.manual_seed(0)
    plain = nn.Conv2d(6, 5, k, stride=s, padding=p, bias=bias)
    fast = nn.Conv2d(6, 5, k, stride=s, padding=p, bias=bias)
    fast.load_state_dict(plain.state_dict())
    use_one_pixel_convs(fast)
    return plain, fast


@pytest.mark.parametrize("size,k,s,p", CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_same_outputs_and_gradients_as_conv2d(size, k, s, p, bias):
    plain, fast = _pair(size, k, s, p, bias)
    x = torch.randn(4, 6, size, size)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = plain(xa), fast(xb)
    assert ya.shape == yb.shape
    torch.testing.assert_close(yb, ya, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.weight.grad, plain.weight.grad, rtol=1e-5, atol=1e-5)
    if bias:
        torch.testing.assert_close(fast.bias.grad, plain.bias.grad, rtol=1e-5, atol=1e-5)


def test_only_one_pixel_outputs_take_the_matrix_product():
    _, fast = _pair(1, 3, 1, 1, False)
    assert fast.one_pixel_taps((1, 1)) == ((1, 1), (1, 1))  # the centre tap alone
    assert fast.one_pixel_taps((4, 4)) is None  # 4x4 output: plain convolution
    grouped = OnePixelConv2d(4, 4, 3, padding=1, groups=2)
    dilated = OnePixelConv2d(4, 4, 3, padding=2, dilation=2)
    assert grouped.one_pixel_taps((1, 1)) is None and dilated.one_pixel_taps((1, 1)) is None
    _, down = _pair(2, 3, 2, 1, False)
    assert down.one_pixel_taps((2, 2)) == ((1, 2), (1, 2))  # taps 1-2 meet pixels 0-1


def test_resnet18_keeps_its_function_and_state_dict():
    plain, fast = init_model("resnet18", 3), init_model("resnet18", 3)
    assert use_one_pixel_convs(fast) == 20  # every convolution of resnet18
    assert list(fast.state_dict()) == list(plain.state_dict())
    assert all(isinstance(m, nn.Conv2d) for m in fast.modules() if isinstance(m, OnePixelConv2d))
    x = torch.rand(8, 3, 32, 32) * 255
    plain.eval(), fast.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-4)


def test_on_cpu_only():
    net = init_model("small_cnn", 0)
    on_cpu(net, "meta")
    assert not any(isinstance(m, OnePixelConv2d) for m in net.modules())
    on_cpu(net, "cpu")
    assert sum(isinstance(m, OnePixelConv2d) for m in net.modules()) == 3


def test_adam_is_fused_where_it_can_be():
    net = nn.Linear(3, 2)
    assert adam(net.parameters(), lr=1e-3).defaults["fused"] is True
    groups = [{"params": [net.weight]}, {"params": [net.bias]}]
    assert adam(groups, lr=1e-3).defaults["fused"] is True
    mixed = [net.weight, torch.zeros(2, device="meta", requires_grad=True)]
    assert not adam(mixed, lr=1e-3).defaults["fused"]


def test_fused_adam_takes_the_same_steps_as_torchs_default():
    torch.manual_seed(0)
    a, b = nn.Linear(5, 3), nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    oa = torch.optim.Adam(a.parameters(), lr=1e-2, weight_decay=5e-3)
    ob = adam(b.parameters(), lr=1e-2, weight_decay=5e-3)
    for _ in range(5):
        x = torch.randn(8, 5)
        for net, opt in ((a, oa), (b, ob)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    torch.testing.assert_close(b.weight, a.weight, rtol=1e-5, atol=1e-6)
