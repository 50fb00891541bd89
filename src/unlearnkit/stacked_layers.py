"""K networks of one architecture folded into one channel-stacked network.

Model k owns the k-th block of channels everywhere: a ``Conv2d(in, out)`` becomes a
``Conv2d(K*in, K*out, groups=K)``, a ``BatchNorm2d(C)`` a ``BatchNorm2d(K*C)`` (per-channel
statistics are per-model statistics, running ones included), a ``Linear(in, out)`` a
:class:`StackedLinear`. Element-wise and per-channel modules (ReLU, pooling, identity)
work unchanged, so one pass of the wide network runs the K networks on K different
batches with one kernel per layer instead of K.

Every tensor of the wide network's state is the K networks' tensors concatenated along
dim 0 under the same key (scalars such as ``num_batches_tracked`` are shared), so states
go in and out with :func:`stack_states` / :func:`unstack_state`.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class StackedLinear(nn.Module):
    """K independent ``Linear(in, out)`` layers on the K channel blocks of ``[B, K*in]``.

    The weight is stored as ``[K*out, in]`` and the bias as ``[K*out]`` so that, like
    every other tensor here, model k's part is the k-th chunk along dim 0.
    """

    def __init__(self, k: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.k, self.in_features, self.out_features = k, in_features, out_features
        self.weight = nn.Parameter(torch.empty(k * out_features, in_features))
        self.bias = nn.Parameter(torch.empty(k * out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xs = x.reshape(b, self.k, self.in_features).transpose(0, 1)  # [K, B, in]
        w = self.weight.view(self.k, self.out_features, self.in_features)  # [K, out, in]
        if self.bias is None:
            y = torch.bmm(xs, w.transpose(1, 2))  # [K, B, out]
        else:
            bias = self.bias.view(self.k, 1, self.out_features)  # [K, 1, out]
            y = torch.baddbmm(bias, xs, w.transpose(1, 2))  # [K, B, out]
        return y.transpose(0, 1).reshape(b, self.k * self.out_features)  # [B, K*out]


class StackedConv2d(nn.Conv2d):
    """A ``Conv2d`` for K models (weight ``[K*out, in, kh, kw]``, groups K), run one of four ways.

    ``impl = "grouped"``: one grouped convolution (cuDNN/oneDNN; some of their grouped
    kernels loop over the groups). ``impl = "bmm"``: the patches unfolded once and K
    matrix products in one batched GEMM. ``impl = "split"``: K ordinary convolutions on
    the K channel blocks (the one-model kernels; for the CPU, where oneDNN's grouped
    backward is slower). ``impl = "hybrid"``: grouped forward and input gradient, the
    weight gradient as one batched GEMM over unfolded patches (:class:`HybridConv`).
    Same function, rounding apart; :func:`unlearnkit.fused_training.tune_convs` picks the fastest
    per layer.
    """

    def __init__(self, k: int, conv: nn.Conv2d):
        super().__init__(k * conv.in_channels, k * conv.out_channels, conv.kernel_size,
                         conv.stride, conv.padding, conv.dilation, k * conv.groups,
                         conv.bias is not None, conv.padding_mode)
        self.k = k
        self.impl = "grouped"

    @property
    def can_bmm(self) -> bool:
        """The batched-GEMM form covers zero padding given as numbers, one group per model."""
        return (self.groups == self.k and self.padding_mode == "zeros"
                and not isinstance(self.padding, str))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.impl == "bmm" and self.can_bmm:
            return bmm_conv(x, self.weight, self.bias, self.k, self.stride, self.padding,
                            self.dilation)
        if self.impl == "hybrid" and self.can_bmm:
            return hybrid_conv(x, self.weight, self.bias, self.k, self.stride, self.padding,
                               self.dilation)
        if self.impl == "split" and self.padding_mode == "zeros":
            return self._split(x)
        return super().forward(x)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """K convolutions, one per channel block, concatenated: [B, K*Cout, Ho, Wo]."""
        biases = [None] * self.k if self.bias is None else self.bias.chunk(self.k)
        outs = [F.conv2d(xi, wi, bi, self.stride, self.padding, self.dilation,
                         self.groups // self.k)
                for xi, wi, bi in zip(x.chunk(self.k, 1), self.weight.chunk(self.k), biases)]
        return torch.cat(outs, 1)


def unfold_patches(x: torch.Tensor, k: int, kernel_size, stride, padding,
                   dilation) -> tuple[torch.Tensor, int, int]:
    """The K models' convolution patches of ``x`` [B, K*Cin, H, W], and Ho, Wo.

    Patches: [K, B*Ho*Wo, kh*kw*Cin], each laid out (kh, kw, Cin), matching a weight
    permuted to ``[Cout, kh, kw, Cin]`` (the channels_last order).
    """
    b, cin = x.shape[0], x.shape[1] // k
    (kh, kw), (ph, pw), (sh, sw), (dh, dw) = kernel_size, padding, stride, dilation
    xp = F.pad(x, (pw, pw, ph, ph)) if ph or pw else x
    patches = (xp.permute(0, 2, 3, 1)  # [B, Hp, Wp, K*Cin]
               .unfold(1, dh * (kh - 1) + 1, sh).unfold(2, dw * (kw - 1) + 1, sw))
    patches = patches[..., ::dh, ::dw]  # [B, Ho, Wo, K*Cin, kh, kw], a view
    ho, wo = patches.shape[1:3]
    cols = (patches.reshape(b, ho, wo, k, cin, kh, kw).permute(3, 0, 1, 2, 5, 6, 4)
            .reshape(k, b * ho * wo, kh * kw * cin))
    return cols, ho, wo


def bmm_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, k: int,
             stride, padding, dilation) -> torch.Tensor:
    """K convolutions as one batched GEMM over unfolded patches.

    ``x`` [B, K*Cin, H, W] (any memory format), ``weight`` [K*Cout, Cin, kh, kw].
    Returns [B, K*Cout, Ho, Wo], channels_last when ``x`` is, else contiguous.
    """
    b = x.shape[0]
    cout, cin, kh, kw = weight.shape[0] // k, *weight.shape[1:]
    cols, ho, wo = unfold_patches(x, k, (kh, kw), stride, padding, dilation)  # [K, B*Ho*Wo, kh*kw*Cin]
    w = weight.permute(0, 2, 3, 1).reshape(k, cout, kh * kw * cin).transpose(1, 2)
    if bias is None:
        out = torch.bmm(cols, w)  # [K, B*Ho*Wo, Cout]
    else:
        out = torch.baddbmm(bias.view(k, 1, cout), cols, w)  # [K, B*Ho*Wo, Cout]
    out = (out.view(k, b, ho, wo, cout).permute(1, 2, 3, 0, 4)
           .reshape(b, ho, wo, k * cout).permute(0, 3, 1, 2))  # [B, K*Cout, Ho, Wo]
    return out if x.is_contiguous(memory_format=torch.channels_last) else out.contiguous()


class HybridConv(torch.autograd.Function):
    """A grouped convolution whose weight gradient is one batched GEMM.

    Forward and input gradient run the library's grouped kernels; the weight gradient of
    the K models, ``grad_out_k^T @ patches_k``, is one ``bmm`` over the unfolded input.
    The reason: cuDNN runs grouped convolutions group by group (a slicing kernel and a
    small convolution per group and pass), and of the three passes the weight gradient
    is the one a batched GEMM serves without a scatter (the input gradient by GEMM would
    need a ``fold``). Inputs arrive already in one dtype (see :func:`hybrid_conv`).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, k, stride, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.conf = (k, stride, padding, dilation, bias is not None)
        return F.conv2d(x, weight, bias, stride, padding, dilation, k)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        k, stride, padding, dilation, has_bias = ctx.conf
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.nn.grad.conv2d_input(x.shape, weight, grad_out, stride, padding,
                                                dilation, k)
        if ctx.needs_input_grad[1]:
            grad_w = bmm_weight_grad(x, grad_out, weight.shape, k, stride, padding, dilation)
        if has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None


def bmm_weight_grad(x: torch.Tensor, grad_out: torch.Tensor, weight_shape, k: int, stride,
                    padding, dilation) -> torch.Tensor:
    """The weight gradient [K*Cout, Cin, kh, kw] of K convolutions, as one batched GEMM.

    Returned with channels_last strides (the patch order), the layout of a
    channels_last weight.
    """
    cout, cin, kh, kw = weight_shape[0] // k, *weight_shape[1:]
    cols, _, _ = unfold_patches(x, k, (kh, kw), stride, padding, dilation)  # [K, B*Ho*Wo, kh*kw*Cin]
    g = grad_out.permute(0, 2, 3, 1).reshape(-1, k, cout).transpose(0, 1)  # [K, B*Ho*Wo, Cout]
    grad = torch.bmm(g.transpose(1, 2), cols)  # [K, Cout, kh*kw*Cin]
    return grad.view(k * cout, kh, kw, cin).permute(0, 3, 1, 2)


def hybrid_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, k: int,
                stride, padding, dilation) -> torch.Tensor:
    """:class:`HybridConv` under autocast too: the casts happen outside it, so autograd
    carries each gradient back to its parameter's dtype."""
    kind = x.device.type
    if torch.is_autocast_enabled(kind):
        dtype = torch.get_autocast_dtype(kind)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
        with torch.autocast(kind, enabled=False):
            return HybridConv.apply(x, weight, bias, k, stride, padding, dilation)
    return HybridConv.apply(x, weight, bias, k, stride, padding, dilation)


def _wide_conv(m: nn.Conv2d, k: int) -> StackedConv2d:
    """``m`` for K models: K times the channels, K times the groups."""
    return StackedConv2d(k, m)


def _wide_bn(m: nn.BatchNorm2d, k: int) -> nn.BatchNorm2d:
    """``m`` for K models: K times the channels, same eps and momentum."""
    return nn.BatchNorm2d(k * m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)


def _wide_linear(m: nn.Linear, k: int) -> StackedLinear:
    """``m`` for K models, as a :class:`StackedLinear`."""
    return StackedLinear(k, m.in_features, m.out_features, m.bias is not None)


_WIDEN = {nn.Conv2d: _wide_conv, nn.BatchNorm2d: _wide_bn, nn.Linear: _wide_linear}


def widen(net: nn.Module, k: int) -> nn.Module:
    """A network that runs K copies of ``net``'s architecture side by side (structure only).

    Parameters and buffers are left uninitialised (built on the meta device, so no
    time goes into initialising K networks): load a state from :func:`stack_states`
    after ``to_empty``. Raises ``ValueError`` for a layer with its own parameters or
    buffers that has no stacked form here (the fused trainer would silently mix the
    models through it).
    """
    if k < 1:
        raise ValueError(f"the number of stacked models must be >= 1, got {k}")
    with torch.device("meta"):
        wide = copy.deepcopy(net).to("meta")
        _widen_children(wide, k, prefix="")
    return wide


def _widen_children(module: nn.Module, k: int, prefix: str) -> None:
    """Replace, in place and recursively, every leaf layer of ``module`` by its wide form."""
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        make = _WIDEN.get(type(child))
        if make is not None:
            setattr(module, name, make(child, k))
        elif any(True for _ in child.children()):
            _widen_children(child, k, prefix=path + ".")
        elif any(True for _ in child.parameters(recurse=False)) or any(
                True for _ in child.buffers(recurse=False)):
            raise ValueError(
                f"cannot fuse layer {path!r} of type {type(child).__name__}: only Conv2d, "
                "BatchNorm2d, Linear and parameter-free per-channel layers can be stacked; "
                "train this architecture one model at a time with unlearnkit.train.train"
            )


def stack_states(states: list[dict]) -> dict:
    """One wide state from K states of one architecture: tensors concatenated along dim 0."""
    if not states:
        raise ValueError("need at least one state to stack")
    out = {}
    for key, first in states[0].items():
        if first.dim() == 0:
            out[key] = first.clone()  # shared scalar, e.g. num_batches_tracked
        else:
            out[key] = torch.cat([s[key] for s in states], dim=0)
    return out


def unstack_state(state: dict, k: int, device: str | torch.device = "cpu") -> list[dict]:
    """The K states in a wide ``state``, as contiguous tensors on ``device``."""
    parts: list[dict] = [{} for _ in range(k)]
    for key, value in state.items():
        value = value.detach()
        chunks = [value] * k if value.dim() == 0 else value.chunk(k, dim=0)
        for part, chunk in zip(parts, chunks):
            part[key] = chunk.to(device, memory_format=torch.contiguous_format).clone()
    return parts


def build_wide(template: nn.Module, states: list[dict], device: str | torch.device) -> nn.Module:
    """The wide network of ``template``'s architecture holding ``states``, on ``device``."""
    wide = widen(template, len(states)).to_empty(device=device)
    wide.load_state_dict(stack_states(states))
    return wide


def stack_inputs(x: torch.Tensor) -> torch.Tensor:
    """K batches ``[K, B, 3, H, W]`` as the wide network's input ``[B, K*3, H, W]``."""
    return x.transpose(0, 1).flatten(1, 2)


def split_outputs(out: torch.Tensor, k: int) -> torch.Tensor:
    """The wide network's output ``[B, K*C]`` as the K models' logits ``[K, B, C]``."""
    return out.view(out.shape[0], k, -1).transpose(0, 1)
