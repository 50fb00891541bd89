"""NegGrad+ (Kurmanji et al., NeurIPS 2023, the SCRUB paper's strong baseline).

Every step descends on a retain batch and ascends on a forget batch:
loss = a * CE(retain) - (1 - a) * CE(forget). The forget batches cycle (the forget set
is small), so an epoch is one pass over the retain set.
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
    cycle,
    descend,
    finish,
    generator,
    net_device,
    progress_bar,
    shuffled_batches,
)


@dataclass
class NegGradPlusConfig(MethodConfig):
    """Hyperparameters of NegGrad+ (defaults: the SCRUB paper's, epochs cut to fit the budget)."""

    alpha: float = param(0.95, min=0, max=1, search=Space(0.8, 0.999))
    """Weight a of the retain loss; the forget loss gets 1 - a (SCRUB paper: 0.95)."""
    lr: float = param(0.01, min=0, min_open=True, search=Space(1e-4, 0.1, log=True))
    """SGD learning rate (SCRUB paper: 0.01)."""
    momentum: float = param(0.9, min=0, max=1, max_open=True)
    """SGD momentum (SCRUB paper: 0.9)."""
    weight_decay: float = param(5e-4, min=0)
    """SGD weight decay (the kit's choice, as the scorer's SGD baseline: 5e-4)."""
    epochs: int = param(2, min=1, search=Space(1, 5))
    """Passes over the retain set (SCRUB paper: up to 10; the competition's budget, 20% of
    a 30-epoch retrain, is about 6 retain epochs, and each step here costs two batches)."""
    max_steps: int = param(0, min=0)
    """Stop after this many steps when > 0 (the kit's knob for quick CPU runs)."""


@register_method(
    "neggrad_plus",
    config=NegGradPlusConfig,
    scenarios=("sample", "class"),
    summary="descend on retain, ascend on forget: a*CE(retain) - (1-a)*CE(forget) (Kurmanji 2023)",
)
def neggrad_plus(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
                 cfg: NegGradPlusConfig) -> nn.Module:
    """Unlearn by gradient descent on retain and ascent on forget (in place)."""
    device = net_device(net)
    gen = generator(seed)
    forget_batches = cycle(forget_loader, device, gen)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    a = cfg.alpha
    net.train()
    step = 0
    for _ in progress_bar(range(cfg.epochs), cfg.progress, "neggrad_plus"):
        for xr, yr in shuffled_batches(retain_loader, device, gen):
            if 0 < cfg.max_steps <= step:
                break
            xf, yf = next(forget_batches)
            loss = a * F.cross_entropy(net(xr), yr) - (1 - a) * F.cross_entropy(net(xf), yf)
            descend(opt, loss)
            step += 1
    return finish(net)
