"""Convolutions whose output is one pixel, computed as the matrix product they are.

The competition's ResNet-18 keeps torchvision's ImageNet stem, so a 32x32 image reaches
layer4 at 1x1 (and layer4's first block reads a 2x2 map). A 3x3 convolution on a 1x1 map
with padding 1 touches only its kernel's centre; oneDNN still computes (and, backwards,
differentiates) all nine taps, at a third of its forward speed. :class:`OnePixelConv2d`
computes such a layer as ``linear(input's overlapping pixels, the taps that meet them)``:
the same function (rounding apart), the same parameters and state_dict, every other
shape left to ``nn.Conv2d``. The taps that meet only padding get a zero gradient, as
before, so weight decay still acts on them exactly as it did.

The weight's gradient is made in the weight's own layout (a channels_last weight would
otherwise take a copy of it at every step). Measured (``python scripts/bench_cpu_step.py
--model resnet18``; docs/benchmarks.md): with fused Adam about 1.5x the images/s of one
CPU training step. The harness applies it to the networks it trains and unlearns on the
CPU (:func:`unlearnkit.cpu_speed.on_cpu`); on CUDA it is not applied (not measured there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _OnePixelProduct(torch.autograd.Function):
    """``linear(inputs, the taps of weight that meet them, bias)``, whose weight gradient
    is made in the weight's own layout: autograd's slice-backward would make it
    contiguous, and a channels_last weight would then take a copy of it every step."""

    @staticmethod
    def forward(ctx, inputs, weight, bias, taps):
        (ph, rh), (pw, rw) = taps
        kernel = weight[:, :, ph:ph + rh, pw:pw + rw].reshape(weight.shape[0], -1)
        ctx.save_for_backward(inputs, weight, kernel)
        ctx.taps, ctx.has_bias = taps, bias is not None
        return F.linear(inputs, kernel, bias)

    @staticmethod
    def backward(ctx, grad):
        inputs, weight, kernel = ctx.saved_tensors
        (ph, rh), (pw, rw) = ctx.taps
        grad_inputs = grad @ kernel if ctx.needs_input_grad[0] else None
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[1]:
            grad_weight = torch.zeros_like(weight)  # keeps the weight's layout
            grad_weight[:, :, ph:ph + rh, pw:pw + rw] = (grad.t() @ inputs).view(
                grad.shape[1], -1, rh, rw)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return grad_inputs, grad_weight, grad_bias, None


class OnePixelConv2d(nn.Conv2d):
    """``nn.Conv2d`` that runs as one matrix product when its output is 1x1."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor,
                      bias: torch.Tensor | None) -> torch.Tensor:
        taps = self.one_pixel_taps(x.shape[-2:])
        if taps is None:
            return super()._conv_forward(x, weight, bias)
        inputs = x[:, :, :taps[0][1], :taps[1][1]].reshape(x.shape[0], -1)
        return _OnePixelProduct.apply(inputs, weight, bias, taps).view(x.shape[0], -1, 1, 1)

    def one_pixel_taps(self, size) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """Per axis (first kernel tap that meets the input, how many input pixels it
        meets) when this layer maps an input of ``size`` (H, W) to one pixel; None when
        it does not, or when it has groups, dilation or non-zero padding."""
        if (self.groups != 1 or self.dilation != (1, 1) or self.padding_mode != "zeros"
                or isinstance(self.padding, str)):
            return None
        axes = []
        for n, k, s, p in zip(size, self.kernel_size, self.stride, self.padding):
            if (n + 2 * p - k) // s != 0 or p >= k:
                return None
            axes.append((p, min(n, k - p)))  # input pixels 0..m-1 meet taps p..p+m-1
        return axes[0], axes[1]


def use_one_pixel_convs(net: nn.Module) -> int:
    """Turn every plain ``nn.Conv2d`` of ``net`` into :class:`OnePixelConv2d`, in place
    (the class only: parameters, buffers and state_dict keys stay); the number turned."""
    turned = 0
    for m in net.modules():
        if type(m) is nn.Conv2d:
            m.__class__ = OnePixelConv2d
            turned += 1
    return turned
