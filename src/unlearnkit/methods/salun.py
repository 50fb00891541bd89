"""SalUn: saliency-masked random labels (Fan, Liu, Zhang, Wei, Wong, Liu, ICLR 2024, arXiv 2310.12508).

1. Saliency mask: with the network in eval mode, the gradient of -CE is summed over all
   forget batches; the entries with the largest |sum| over *all* parameters taken
   together (BatchNorm and fc included), a fraction gamma of them, get mask 1.
2. Unlearning, per epoch: one pass over the forget set with fresh uniform random labels
   for every batch, then one pass over the retain set with its true labels. Gradients are
   multiplied by the mask before each SGD step, and after each step the masked-out
   entries are restored to their original values and their momentum zeroed (the official
   code's behaviour since its PR #33, "Fix weight decay": before it, weight decay still
   shrank the masked-out weights).

Sources: ``methods.md`` (baselines) and ``methods-wave2.md`` section 3
(``OPTML-Group/Unlearn-Saliency``: ``generate_mask.py``, ``unlearn/RL.py``, README);
nothing here is copied code.
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
    finish,
    generator,
    iter_batches,
    net_device,
    num_outputs,
    progress_bar,
    shuffled_batches,
)


@dataclass
class SalUnConfig(MethodConfig):
    """Hyperparameters of SalUn (defaults: the official CIFAR-10 README example)."""

    gamma: float = param(0.5, min=0, max=1, min_open=True, search=Space(0.1, 0.9))
    """Fraction of all parameter entries the saliency mask keeps trainable, those with
    the largest |sum of grad of -CE over forget| (official README's CIFAR-10 example:
    mask/with_0.5.pt, i.e. 0.5; the script writes 0.1 ... 1.0)."""
    lr: float = param(0.013, min=0, min_open=True, search=Space(1e-3, 5e-2, log=True))
    """SGD learning rate, constant (official README, ResNet-18 CIFAR-10, 10% forgetting:
    0.013; its MultiStepLR milestones 91/136 never trigger in 10 epochs)."""
    epochs: int = param(10, min=1, quick=1, search=Space(1, 10))
    """Epochs, each a random-label pass over forget then a pass over retain (official
    README: 10)."""
    momentum: float = param(0.9, min=0, max=1, max_open=True)
    """SGD momentum (official arg_parser.py default: 0.9)."""
    weight_decay: float = param(5e-4, min=0)
    """SGD weight decay, which the restore step keeps off masked-out entries (official
    arg_parser.py default: 5e-4)."""


def saliency_mask(net: nn.Module, forget_loader, device: torch.device,
                  gamma: float) -> list[torch.Tensor]:
    """One boolean mask per parameter of ``net`` (True = trainable): the top ``gamma``
    fraction, floor(gamma * N) of all N entries, of |sum over forget batches of the
    gradient of -CE (batch mean)|, ranked globally, the network in eval mode.

    The network's gradients and mode are left as they were found (``.grad`` cleared).
    """
    params = list(net.parameters())
    total = [torch.zeros_like(p, dtype=torch.float32) for p in params]
    live = [i for i, p in enumerate(params) if p.requires_grad]
    was_training = net.training
    net.eval()
    try:
        for x, y in iter_batches(forget_loader, device):
            grads = torch.autograd.grad(-F.cross_entropy(net(x), y), [params[i] for i in live],
                                        allow_unused=True)
            for i, g in zip(live, grads):
                if g is not None:
                    total[i].add_(g.float())
    finally:
        net.train(was_training)
    return top_fraction_masks([t.abs() for t in total], gamma)


def top_fraction_masks(scores: list[torch.Tensor], gamma: float) -> list[torch.Tensor]:
    """Masks selecting the floor(gamma * N) largest of all N ``scores`` entries together
    (ties broken by position, earlier first)."""
    flat = torch.cat([s.flatten() for s in scores])  # [N]
    k = int(gamma * flat.numel())
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k > 0:
        order = torch.sort(flat, descending=True, stable=True).indices  # [N]
        chosen[order[:k]] = True
    masks, start = [], 0
    for s in scores:
        masks.append(chosen[start:start + s.numel()].reshape(s.shape))
        start += s.numel()
    return masks


class _MaskedSGD:
    """SGD whose steps only move the masked-in entries: gradients are multiplied by the
    mask, and after each step the masked-out entries get their original values back and
    their momentum is zeroed (so weight decay and momentum cannot move them either)."""

    def __init__(self, net: nn.Module, masks: list[torch.Tensor], lr: float, momentum: float,
                 weight_decay: float):
        self.params = list(net.parameters())
        self.masks = masks
        self.kept = [p.detach().clone() for p in self.params]
        self.opt = torch.optim.SGD(self.params, lr=lr, momentum=momentum,
                                   weight_decay=weight_decay)

    def step(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        for p, m in zip(self.params, self.masks):
            if p.grad is not None:
                p.grad.mul_(m)
        self.opt.step()
        with torch.no_grad():
            for p, m, kept in zip(self.params, self.masks, self.kept):
                p.copy_(torch.where(m, p, kept))
                buf = self.opt.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    buf.mul_(m)


@register_method(
    "salun",
    config=SalUnConfig,
    scenarios=("sample", "class"),
    summary="random labels on forget then CE on retain, only the most forget-salient "
            "weights trained (Fan et al. 2024)",
)
def salun(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
          cfg: SalUnConfig) -> nn.Module:
    """Unlearn by saliency-masked random-label training (in place).

    The validation loader is not used. Batches keep the loaders' batch size.
    """
    device = net_device(net)
    gen = generator(seed)
    masks = saliency_mask(net, forget_loader, device, cfg.gamma)
    num_classes = num_outputs(net, next(iter_batches(forget_loader, device))[0])
    opt = _MaskedSGD(net, masks, cfg.lr, cfg.momentum, cfg.weight_decay)
    net.train()
    for _ in progress_bar(range(cfg.epochs), cfg.progress, "salun"):
        for x, _ in shuffled_batches(forget_loader, device, gen):
            labels = torch.randint(0, num_classes, (len(x),), generator=gen).to(device)
            opt.step(F.cross_entropy(net(x), labels))
        for x, y in shuffled_batches(retain_loader, device, gen):
            opt.step(F.cross_entropy(net(x), y))
    return finish(net)
