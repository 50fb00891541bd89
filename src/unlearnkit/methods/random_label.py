"""Random labels (Amnesiac ML, Graves et al., AAAI 2021): relearn the forget set as noise.

Each forget example is relabelled once to a random other class, and the network is
trained on these relabelled examples together with the whole retain set, so what it had
memorised about them is overwritten while the retain data keeps its accuracy.
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
    collect,
    descend,
    finish,
    generator,
    net_device,
    num_batches,
    num_outputs,
    progress_bar,
    shuffled_batches,
)


@dataclass
class RandomLabelConfig(MethodConfig):
    """Hyperparameters of random-label unlearning (defaults: Amnesiac's, as benchmarks run it)."""

    epochs: int = param(3, min=1, search=Space(1, 5))
    """Passes over retain + relabelled forget (benchmarks: 3; 10% of a 30-epoch retrain)."""
    lr: float = param(1e-4, min=0, min_open=True, search=Space(1e-5, 1e-2, log=True))
    """Adam learning rate (benchmarks: 1e-4, the scorer's training rate)."""
    max_steps: int = param(0, min=0)
    """Stop after this many steps when > 0 (the kit's knob for quick CPU runs)."""


def random_other_labels(y: torch.Tensor, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """For each label in ``y`` [n], a uniformly random *different* class [n]."""
    shift = torch.randint(1, num_classes, (len(y),), generator=gen).to(y.device)  # [n]
    return (y + shift) % num_classes


def _with_forget(retain_loader, fx: torch.Tensor, fy: torch.Tensor, device: torch.device,
                 gen: torch.Generator):
    """Shuffled retain batches, each joined by its even share of the shuffled forget set."""
    n_batches = max(1, num_batches(retain_loader))
    order = torch.randperm(len(fy), generator=gen).to(fy.device)  # [F]
    for i, (x, y) in enumerate(shuffled_batches(retain_loader, device, gen)):
        share = order[i * len(fy) // n_batches:(i + 1) * len(fy) // n_batches]
        yield torch.cat([x, fx[share]]), torch.cat([y, fy[share]])


@register_method(
    "random_label",
    config=RandomLabelConfig,
    scenarios=("sample", "class"),
    summary="train on retain plus the forget set relabelled at random (Amnesiac, Graves 2021)",
)
def random_label(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
                 cfg: RandomLabelConfig) -> nn.Module:
    """Unlearn by training on retain data and randomly relabelled forget data (in place)."""
    device = net_device(net)
    gen = generator(seed)
    fx, fy = collect(forget_loader, device)  # [F, 3, 32, 32], [F]
    fy = random_other_labels(fy, num_outputs(net, fx), gen)
    opt = adam(net.parameters(), lr=cfg.lr)
    net.train()
    step = 0
    for _ in progress_bar(range(cfg.epochs), cfg.progress, "random_label"):
        for x, y in _with_forget(retain_loader, fx, fy, device, gen):
            if 0 < cfg.max_steps <= step:
                break
            loss = F.cross_entropy(net(x), y)
            descend(opt, loss)
            step += 1
    return finish(net)
