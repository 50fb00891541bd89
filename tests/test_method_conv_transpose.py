"""conv_transpose (toshi_k's CT): the kernel transpose and what it means for the net."""

from __future__ import annotations

import copy

import pytest
import torch
from method_fixtures import one_thread  # noqa: F401
from torch import nn

from unlearnkit.methods import get_method, resolve_config, run_method
from unlearnkit.methods._common import named_convs
from unlearnkit.methods.conv_transpose import ConvTransposeConfig, transpose_kernels
from unlearnkit.models import build_model


def test_transpose_swaps_the_spatial_axes_of_every_kernel():
    torch.manual_seed(0)
    net = build_model("small_cnn")
    before = {name: c.weight.detach().clone() for name, c in named_convs(net)}
    transpose_kernels(net)
    for name, conv in named_convs(net):
        w, old = conv.weight, before[name]
        for o, i, h, k in [(0, 0, 0, 1), (1, 2, 2, 0), (3, 1, 1, 2)]:
            assert w[o, i, h, k] == old[o, i, k, h]
        assert torch.equal(w, old.permute(0, 1, 3, 2))
        assert not torch.equal(w, old)


@pytest.mark.parametrize("model", ["small_cnn", "resnet18"])
def test_transposed_net_sees_transposed_images(model):
    """Square kernels, symmetric stride / padding: net_T(x) = net(x with h, w swapped)."""
    torch.manual_seed(0)
    net = build_model(model).eval()
    x = torch.rand(2, 3, 32, 32) * 255
    with torch.no_grad():
        expected = net(x.transpose(2, 3))
        transpose_kernels(net)
        got = net(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_non_square_kernels_are_refused_before_any_change():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, (1, 3)))
    before = copy.deepcopy(net.state_dict())
    with pytest.raises(ValueError, match="1x3"):
        transpose_kernels(net)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_a_network_without_convolutions_is_refused():
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    retain = [(torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))]
    with pytest.raises(ValueError, match="no Conv2d"):
        run_method("conv_transpose", net, retain, [], None, seed=0,
                   cfg=resolve_config("conv_transpose"))


def test_defaults_are_the_published_ones():
    cfg = ConvTransposeConfig()
    assert (cfg.epochs, cfg.lr, cfg.momentum, cfg.weight_decay) == (3, 1e-3, 0.9, 5e-4)
    assert get_method("conv_transpose").needs_forget is False
