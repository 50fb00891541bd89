"""One-pixel convolutions compute what nn.Conv2d computes (in either layout), the kit's
Adam takes torch's steps in place, and the CPU training uses both."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unlearnkit.cpu_speed import on_cpu
from unlearnkit.fused_adam import ChannelsLastAdam, adam
from unlearnkit.one_pixel_conv import OnePixelConv2d, use_one_pixel_convs
from unlearnkit.train import init_model

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
@pytest.mark.parametrize("channels_last", [False, True])
def test_same_outputs_and_gradients_as_conv2d(size, k, s, p, bias, channels_last):
    plain, fast = _pair(size, k, s, p, bias)
    x = torch.randn(4, 6, size, size)
    if channels_last:
        plain.to(memory_format=torch.channels_last)
        fast.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
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
    if channels_last and k > 1:  # the gradient is made in the weight's own layout
        assert fast.weight.grad.stride() == fast.weight.stride()


def test_a_frozen_weight_gets_no_gradient_and_the_input_still_does():
    _, fast = _pair(1, 3, 1, 1, True)
    fast.weight.requires_grad_(False)
    x = torch.randn(2, 6, 1, 1, requires_grad=True)
    fast(x).sum().backward()
    assert fast.weight.grad is None and fast.bias.grad is not None
    assert x.grad is not None and x.grad.abs().sum() > 0


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
    assert isinstance(adam(net.parameters(), lr=1e-3), ChannelsLastAdam)
    groups = [{"params": [net.weight]}, {"params": [net.bias]}]
    assert isinstance(adam(groups, lr=1e-3), ChannelsLastAdam)
    mixed = [net.weight, torch.zeros(2, device="meta", requires_grad=True)]
    opt = adam(mixed, lr=1e-3)
    assert not isinstance(opt, ChannelsLastAdam) and not opt.defaults["fused"]


def _conv_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


@pytest.mark.parametrize("channels_last", [False, True])
def test_kits_adam_takes_the_same_steps_as_torchs_default(channels_last):
    a, b = _conv_net(), _conv_net()
    if channels_last:
        b.to(memory_format=torch.channels_last)
    oa = torch.optim.Adam(a.parameters(), lr=1e-2, weight_decay=5e-3)
    ob = adam(b.parameters(), lr=1e-2, weight_decay=5e-3)
    sa = torch.optim.lr_scheduler.CosineAnnealingLR(oa, T_max=5)
    sb = torch.optim.lr_scheduler.CosineAnnealingLR(ob, T_max=5)
    conv_weight = b[0].weight
    for _ in range(5):
        x = torch.randn(8, 3, 6, 6)
        for net, opt, sched in ((a, oa, sa), (b, ob, sb)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
            sched.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pb, pa, rtol=1e-5, atol=1e-6)
    assert b[0].weight is conv_weight  # stepped in place, layout kept
    assert b[0].weight.is_contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    state = ob.state_dict()["state"][0]
    assert set(state) == {"step", "exp_avg", "exp_avg_sq"} and float(state["step"]) == 5


def test_kits_adam_refuses_what_it_does_not_run():
    net = nn.Linear(3, 2)
    opt = adam(net.parameters(), lr=1e-3)
    opt.param_groups[0]["amsgrad"] = True
    net(torch.randn(4, 3)).sum().backward()
    with pytest.raises(ValueError, match="amsgrad"):
        opt.step()


def test_keep_freed_memory_takes_on_glibc():
    import platform

    from unlearnkit.allocator import keep_freed_memory
    took = keep_freed_memory()
    assert took is keep_freed_memory()  # once per process, same answer
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert took is True
