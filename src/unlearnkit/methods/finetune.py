"""Fine-tune on the retain set: the competition scorer's own baseline.

Forgetting comes only from training on retain data without the forget set (its
memorised traces fade); cheap and weak, it is the floor every method should beat.
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
    generator,
    net_device,
    num_batches,
    progress_bar,
    shuffled_batches,
)


@dataclass
class FinetuneConfig(MethodConfig):
    """Hyperparameters of fine-tuning (defaults: the scorer's baseline)."""

    epochs: int = param(1, min=1, quick=3, search=Space(1, 5))
    """Passes over the retain set (scorer's baseline: 1; starting kit: 5)."""
    lr: float = param(1e-3, min=0, min_open=True, quick=0.05, search=Space(1e-4, 0.1, log=True))
    """SGD learning rate (scorer's baseline: 1e-3; starting kit: 0.1)."""
    momentum: float = param(0.9, min=0, max=1, max_open=True)
    """SGD momentum (scorer's baseline: 0.9)."""
    weight_decay: float = param(5e-4, min=0)
    """SGD weight decay (scorer's baseline: 5e-4)."""
    cosine: bool = True
    """Cosine decay of the learning rate over all steps (scorer's baseline: cosine)."""
    max_steps: int = param(0, min=0)
    """Stop after this many steps when > 0 (the kit's knob for quick CPU runs)."""


@register_method(
    "finetune",
    config=FinetuneConfig,
    scenarios=("sample", "class"),
    summary="SGD on the retain set only (the competition scorer's baseline)",
)
def finetune(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
             cfg: FinetuneConfig) -> nn.Module:
    """Fine-tune ``net`` on the retain set with SGD (in place)."""
    device = net_device(net)
    gen = generator(seed)
    total = cfg.epochs * num_batches(retain_loader)
    if cfg.max_steps > 0:
        total = min(total, cfg.max_steps)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(total)) if cfg.cosine else None
    net.train()
    step = 0
    for _ in progress_bar(range(cfg.epochs), cfg.progress, "finetune"):
        if step >= total:
            break
        for x, y in shuffled_batches(retain_loader, device, gen):
            if step >= total:
                break
            loss = F.cross_entropy(net(x), y)
            descend(opt, loss, sched)
            step += 1
    return finish(net)
