"""SCRUB (Kurmanji, Triantafillou, Hayes, Triantafillou, NeurIPS 2023, arXiv 2302.09880).

The student (the net) starts at the original; the teacher is a frozen copy of it. Each
epoch, for the first ``max_epochs`` epochs, one max-step pass over the forget set pushes
the student away from the teacher (minimise -KL_T(teacher || student)); then, every
epoch, one min-step pass over the retain set keeps it close and accurate (minimise
gamma * CE + alpha * KL_T). KL_T = KL(softmax(t/T) || softmax(s/T)) * T^2, mean over the
batch. One SGD optimiser serves both passes.

Sources: ``methods.md`` (baselines) and ``methods-wave2.md`` section 3; the official
code's momentum and weight decay as reproduced by third-party ports. Nothing here is
copied code.
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
    descend,
    distill_kl,
    finish,
    frozen_copy,
    generator,
    net_device,
    progress_bar,
    shuffled_batches,
)


@dataclass
class ScrubConfig(MethodConfig):
    """Hyperparameters of SCRUB (defaults: the official CIFAR-10 settings)."""

    lr: float = param(5e-4, min=0, min_open=True, quick=0.01,
                      search=Space(1e-4, 1e-2, log=True))
    """SGD learning rate, constant (official CIFAR-10: 5e-4; its decay epochs 3, 5, 9
    never trigger within 3 epochs)."""
    epochs: int = param(3, min=1, quick=2, search=Space(1, 6))
    """Epochs; each ends with one min-step pass over the retain set (official CIFAR-10: 3)."""
    max_epochs: int = param(2, min=0, search=Space(0, 5))
    """The first this-many epochs start with one max-step pass over the forget set
    (official CIFAR-10 'msteps': 2)."""
    gamma: float = param(0.99, min=0)
    """Weight of the cross-entropy in the min-step (official: 0.99)."""
    alpha: float = param(0.001, min=0, search=Space(1e-4, 1.0, log=True))
    """Weight of KL_T(teacher || student) in the min-step (official: 0.001)."""
    temperature: float = param(4.0, min=0, min_open=True)
    """Temperature T of KL_T, which is scaled by T^2 (official 'kd_T': 4)."""
    momentum: float = param(0.9, min=0, max=1, max_open=True)
    """SGD momentum (official code's sgda_momentum: 0.9)."""
    weight_decay: float = param(5e-4, min=0)
    """SGD weight decay (official code's sgda_weight_decay: 5e-4)."""


def min_step_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                  labels: torch.Tensor, gamma: float, alpha: float, T: float) -> torch.Tensor:
    """gamma * CE(student, labels) + alpha * KL_T(teacher || student): the retain pass."""
    return (gamma * F.cross_entropy(student_logits, labels)
            + alpha * distill_kl(student_logits, teacher_logits, T))


@register_method(
    "scrub",
    config=ScrubConfig,
    scenarios=("sample", "class"),
    summary="max-steps away from the original on forget, min-steps CE + KL to it on "
            "retain (Kurmanji et al. 2023)",
)
def scrub(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
          cfg: ScrubConfig) -> nn.Module:
    """Unlearn with SCRUB's alternating max (forget) and min (retain) passes (in place)."""
    device = net_device(net)
    gen = generator(seed)
    teacher = frozen_copy(net)
    T = cfg.temperature
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    net.train()
    for epoch in progress_bar(range(cfg.epochs), cfg.progress, "scrub"):
        if epoch < cfg.max_epochs:
            for x, _ in shuffled_batches(forget_loader, device, gen):
                with torch.no_grad():
                    t = teacher(x)
                descend(opt, -distill_kl(net(x), t, T))
        for x, y in shuffled_batches(retain_loader, device, gen):
            with torch.no_grad():
                t = teacher(x)
            descend(opt, min_step_loss(net(x), t, y, cfg.gamma, cfg.alpha, T))
    return finish(net)
