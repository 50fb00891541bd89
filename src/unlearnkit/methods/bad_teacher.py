"""Bad Teacher (Chundawat et al., AAAI 2023, arXiv 2205.08096): two teachers, one student.

The student (the net) is distilled towards the competent teacher (the original
model, frozen) on retain data and towards an incompetent teacher (a randomly
initialised network of the same architecture, frozen) on forget data. Labels are not
used, only a flag per example: 1 = forget, 0 = retain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..fused_adam import adam
from ..params import Space, param
from . import register_method
from ._common import (
    MethodConfig,
    descend,
    finish,
    frozen_copy,
    generator,
    iter_batches,
    net_device,
    progress_bar,
    reinit_copy,
    split_batches,
    take_fraction,
)

REDUCTIONS = ("mean", "batchmean", "sum")
BAD_INPUTS = ("standardized", "raw")


@dataclass
class BadTeacherConfig(MethodConfig):
    """Hyperparameters of Bad Teacher (defaults: the official code's)."""

    temperature: float = param(1.0, min=0, min_open=True, search=Space(0.5, 8.0, log=True))
    """Distillation temperature T (official code: 1)."""
    lr: float = param(1e-4, min=0, min_open=True, quick=1e-3, search=Space(1e-5, 1e-2, log=True))
    """Adam learning rate of the student (official code: 1e-4)."""
    epochs: int = param(1, min=1, quick=3, search=Space(1, 5))
    """Passes over the mixed forget + retain data (official code: 1)."""
    batch_size: int = param(256, min=2, quick=32)
    """Examples per step after mixing (official code: 256)."""
    retain_fraction: float = param(0.3, min=0, max=1, search=Space(0.1, 1.0))
    """Share of the retain set, drawn at random, mixed with all of forget (official: 0.3)."""
    reduction: str = param("mean", choices=REDUCTIONS)
    """KL reduction: 'mean' over batch and classes, as the official kl_div call (PyTorch's
    default); 'batchmean' is the true KL per example; 'sum'."""
    bad_teacher_input: str = param("standardized", choices=BAD_INPUTS)
    """What the random teacher sees: 'standardized' = (x - 127.5) / 64, the scale of the
    official code's normalised inputs (there a random net is near-uniform); 'raw' = the
    0-255 pixels, on which a random net is near one-hot (not in the paper)."""


def bad_teacher_loss(student_logits: torch.Tensor, good_logits: torch.Tensor,
                     bad_logits: torch.Tensor, flags: torch.Tensor, T: float = 1.0,
                     reduction: str = "mean") -> torch.Tensor:
    """KL(target || softmax(student / T)), target mixing the teachers by ``flags``.

    ``target = flag * softmax(bad / T) + (1 - flag) * softmax(good / T)``, all [B, C];
    ``flags`` [B] is 1 for forget examples and 0 for retain ones. Identical to
    ``F.kl_div(log_softmax(student / T), target, reduction=reduction)`` (the official
    call, 'mean' by default), written out so that PyTorch's warning about 'mean' is not
    printed on every step.
    """
    flag = flags.to(student_logits.dtype).reshape(-1, 1)  # [B, 1]
    target = flag * F.softmax(bad_logits / T, dim=1) + (1 - flag) * F.softmax(good_logits / T, dim=1)
    log_q = F.log_softmax(student_logits / T, dim=1)  # [B, C]
    pointwise = torch.special.xlogy(target, target) - target * log_q  # [B, C]
    if reduction == "mean":
        return pointwise.mean()
    if reduction == "batchmean":
        return pointwise.sum() / len(pointwise)
    if reduction == "sum":
        return pointwise.sum()
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _mixed_data(retain_loader, forget_loader, device: torch.device, retain_fraction: float,
                gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """All forget images plus a seeded fraction of retain ones, with their flags."""
    retain_x, _ = take_fraction(retain_loader, device, retain_fraction, gen)  # [R, 3, 32, 32]
    forget_x = torch.cat([x for x, _ in iter_batches(forget_loader, device)])  # [F, 3, 32, 32]
    flags = torch.cat([torch.zeros(len(retain_x)), torch.ones(len(forget_x))]).to(device)  # [R+F]
    return torch.cat([retain_x, forget_x]), flags


def _bad_input(x: torch.Tensor, mode: str) -> torch.Tensor:
    """The images as the random teacher sees them (see ``bad_teacher_input``)."""
    return (x - 127.5) / 64.0 if mode == "standardized" else x


@register_method(
    "bad_teacher",
    config=BadTeacherConfig,
    scenarios=("sample", "class"),
    summary="distil from the original on retain and from a random net on forget (Chundawat 2023)",
)
def bad_teacher(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
                cfg: BadTeacherConfig) -> nn.Module:
    """Unlearn by distilling from a competent and an incompetent teacher (in place)."""
    device = net_device(net)
    gen = generator(seed)
    good = frozen_copy(net)
    bad = reinit_copy(net, seed)
    x, flags = _mixed_data(retain_loader, forget_loader, device, cfg.retain_fraction, gen)
    opt = adam(net.parameters(), lr=cfg.lr)
    net.train()
    for _ in progress_bar(range(cfg.epochs), cfg.progress, "bad_teacher"):
        for xb, fb in split_batches(x, flags, batch_size=cfg.batch_size, gen=gen):
            with torch.no_grad():
                good_logits = good(xb)
                bad_logits = bad(_bad_input(xb, cfg.bad_teacher_input))
            loss = bad_teacher_loss(net(xb), good_logits, bad_logits, fb, cfg.temperature,
                                    cfg.reduction)
            descend(opt, loss)
    return finish(net)
