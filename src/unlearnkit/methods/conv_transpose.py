"""Convolution Transpose (CT): toshi_k's half of the Kaggle #6 solution (toshi_k + marvelworld).

Every convolution kernel is transposed, W[o, i, h, w] -> W[o, i, w, h], and the net is
fine-tuned on the retain set for 3 epochs. With square kernels and the same stride,
padding and dilation along both axes, the transposed net on x is the original net on x
with its height and width swapped, so the learnt features stay usable while what was
memorised about single images is disturbed. Uses only the retain set; runs differ by
the data order. (The team's other half, marvelworld's pseudo-labels, is not here.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..params import Space, param
from . import register_method
from ._common import (
    MethodConfig,
    cosine_lambda,
    descend,
    finish,
    first_conv,
    generator,
    named_convs,
    net_device,
    progress_bar,
    sgd,
    shuffled_batches,
)


@dataclass
class ConvTransposeConfig(MethodConfig):
    """Hyperparameters of CT (defaults: toshi_k's write-up via DeepUnlearn kgltop5)."""

    epochs: int = param(3, min=1, quick=2, search=Space(1, 6))
    """Fine-tuning passes over the retain set after the transpose (kgltop5: 3)."""
    lr: float = param(1e-3, min=0, min_open=True, quick=0.05, search=Space(1e-4, 1e-2, log=True))
    """Initial SGD learning rate, cosine-decayed per epoch as CosineAnnealingLR(T_max =
    epochs) (kgltop5: 1e-3)."""
    momentum: float = param(0.9, min=0, max=1, max_open=True)
    """SGD momentum (kgltop5: 0.9)."""
    weight_decay: float = param(5e-4, min=0)
    """SGD weight decay (kgltop5: 5e-4)."""


def _check_square(net: nn.Module) -> list[nn.Conv2d]:
    """Every Conv2d of ``net``; a clear error when there is none or a kernel is not square
    (its transpose would not fit the layer)."""
    first_conv(net)
    convs = named_convs(net)
    for name, conv in convs:
        kh, kw = conv.weight.shape[2:]
        if kh != kw:
            raise ValueError(f"conv_transpose swaps each kernel's height and width, but "
                             f"{name} has a {kh}x{kw} kernel: the swapped kernel would not "
                             f"fit the layer; use square kernels")
    return [conv for _, conv in convs]


@torch.no_grad()
def transpose_kernels(net: nn.Module) -> None:
    """Replace every conv weight W[o, i, h, w] by W[o, i, w, h] in place (square kernels)."""
    for conv in _check_square(net):
        conv.weight.copy_(conv.weight.transpose(2, 3).clone())


@register_method(
    "conv_transpose",
    config=ConvTransposeConfig,
    scenarios=("sample", "class"),
    summary="swap the spatial axes of every conv kernel, then 3 epochs of fine-tuning with "
            "a cosine LR (toshi_k's CT, Kaggle #6)",
    needs_forget=False,
)
def conv_transpose(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
                   cfg: ConvTransposeConfig) -> nn.Module:
    """Unlearn by transposing every conv kernel, then fine-tuning on retain."""
    transpose_kernels(net)
    device = net_device(net)
    gen = generator(seed)
    opt = sgd(net, cfg.lr, cfg.momentum, cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(cfg.epochs))
    net.train()
    for _ in progress_bar(range(cfg.epochs), cfg.progress, "conv_transpose"):
        for x, y in shuffled_batches(retain_loader, device, gen):
            descend(opt, F.cross_entropy(net(x), y))
        sched.step()
    return finish(net)
