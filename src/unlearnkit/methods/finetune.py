"""Fine-tune on the retain set: the competition scorer's own baseline.

Forgetting comes only from training on retain data without the forget set (its
memorised traces fade); cheap and weak, it is the floor every method should beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

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

    epochs: int = 1
    """Passes over the retain set (scorer's baseline: 1; starting kit: 5)."""
    lr: float = 1e-3
    """SGD learning rate (scorer's baseline: 1e-3; starting kit: 0.1)."""
    momentum: float = 0.9
    """SGD momentum (scorer's baseline: 0.9)."""
    weight_decay: float = 5e-4
    """SGD weight decay (scorer's baseline: 5e-4)."""
    cosine: bool = True
    """Cosine decay of the learning rate over all steps (scorer's baseline: cosine)."""
    max_steps: int = 0
    """Stop after this many steps when > 0 (the kit's knob for quick CPU runs)."""


@register_method(
    "finetune",
    config=FinetuneConfig,
    scenarios=("sample", "class"),
    summary="SGD on the retain set only (the competition scorer's baseline)",
)
def finetune(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
             epochs: int, lr: float, momentum: float, weight_decay: float, cosine: bool,
             max_steps: int, progress: bool = False) -> nn.Module:
    """Fine-tune ``net`` on the retain set with SGD (in place)."""
    device = net_device(net)
    gen = generator(seed)
    total = epochs * num_batches(retain_loader)
    if max_steps > 0:
        total = min(total, max_steps)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(total)) if cosine else None
    net.train()
    step = 0
    for _ in progress_bar(range(epochs), progress, "finetune"):
        if step >= total:
            break
        for x, y in shuffled_batches(retain_loader, device, gen):
            if step >= total:
                break
            loss = F.cross_entropy(net(x), y)
            descend(opt, loss, sched)
            step += 1
    return finish(net)
