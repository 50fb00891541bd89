"""Forget-Contrast-Strengthen (FCS): fanchuan's solution, Kaggle private #2 / public #1.

Stage 1 pushes the forget set's predictions towards the uniform distribution (one pass,
KL(uniform || p)). Stage 2 alternates, each epoch, a *forget round*, which pulls each
forget example's logits towards an equal dot product with every retain example of a
contrast batch (the contrastive loss below), and a *retain round*, one pass of
cross-entropy over the retain set. Three SGD optimisers share the parameters, each with
its own momentum; the net stays in training mode throughout. Runs differ by the shuffle
orders and by the retain images each forget round contrasts with (a fresh random draw
per epoch, as the published zip with a reshuffled retain loader gives).
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
    finish,
    generator,
    iter_batches,
    net_device,
    num_batches,
    progress_bar,
    sgd,
    shuffled_batches,
)


@dataclass
class ContrastiveForgetConfig(MethodConfig):
    """Hyperparameters of FCS (defaults: fanchuan's notebook, via DeepUnlearn kgltop1 and
    the write-up)."""

    uniform_lr: float = param(5e-3, min=0, min_open=True, quick=0.02)
    """SGD learning rate of stage 1, KL(uniform || p) on the forget set (fanchuan's
    notebook via DeepUnlearn kgltop1: 0.005)."""
    epochs: int = param(8, min=1, quick=2, search=Space(2, 10))
    """Stage-2 epochs, each a forget round then a retain round (write-up and kgltop1: 8)."""
    temperature: float = param(1.15, min=0, min_open=True, search=Space(0.5, 4.0, log=True))
    """Temperature t of the contrastive loss -log_softmax(z_f . z_r / t) (write-up and
    kgltop1: 1.15)."""
    forget_lr: float = param(3e-4, min=0, min_open=True, quick=3e-3,
                             search=Space(3e-5, 3e-3, log=True))
    """Initial SGD learning rate of the forget rounds, cosine-decayed per forget step over
    epochs * len(forget_loader) steps (kgltop1: 3e-4)."""
    forget_lr_min: float = param(1e-6, min=0)
    """Floor of that cosine decay, eta_min (kgltop1: 1e-6)."""
    retain_lr: float = param(4e-3, min=0, min_open=True, quick=0.02,
                             search=Space(4e-4, 4e-2, log=True))
    """SGD learning rate of the retain rounds, constant (write-up: 0.001 * 256 / 64 = 0.004,
    the rate for batch 64 scaled to batch 256)."""
    retain_weight_decay: float = param(1e-2, min=0)
    """SGD weight decay of the retain rounds (kgltop1: 1e-2; the other two optimisers
    have none)."""
    momentum: float = param(0.9, min=0, max=1, max_open=True)
    """SGD momentum of all three optimisers (kgltop1: 0.9)."""
    batch_size: int = param(256, min=2)
    """Batch size of both retain streams, the retain round's and the contrast one
    (write-up: 256, so that 8 epochs fit in the 8-hour limit)."""


def uniform_kl(logits: torch.Tensor) -> torch.Tensor:
    """KL(uniform || softmax(logits)), averaged over the batch (stage 1's loss).

    Equal to ``KLDivLoss(reduction='batchmean')(log_softmax(logits), uniform)``;
    ``logits`` is [B, C].
    """
    log_p = F.log_softmax(logits, dim=1)  # [B, C]
    num_classes = logits.shape[1]
    log_u = -torch.log(torch.tensor(float(num_classes), dtype=log_p.dtype, device=log_p.device))
    return (torch.exp(log_u) * (log_u - log_p)).sum(1).mean()


def contrastive_loss(forget_logits: torch.Tensor, retain_logits: torch.Tensor,
                     temperature: float) -> torch.Tensor:
    """Mean over all (i, j) of ``-log_softmax_j(z_f[i] . z_r[j] / t)`` (the forget round's).

    ``forget_logits`` [Bf, C] and ``retain_logits`` [Br, C]; the softmax runs over the
    retain examples j, each of which is an equally likely "positive", so the loss is
    smallest when every forget example has the same dot product with all of them.
    The retain logits are detached here: only the forget side is trained.
    """
    similarity = forget_logits @ retain_logits.detach().T / temperature  # [Bf, Br]
    return -F.log_softmax(similarity, dim=1).mean()


class _Reservoir:
    """A seeded uniform sample of at most ``k`` images from batches offered one at a time.

    Every image gets a random key and the ``k`` smallest keys are kept (bottom-k
    sampling), so memory stays at ``k`` images plus one batch however long the stream.
    """

    def __init__(self, k: int, gen: torch.Generator):
        self.k, self.gen = k, gen
        self.x: torch.Tensor | None = None  # [<=k, 3, 32, 32]
        self.key: torch.Tensor | None = None  # [<=k]

    def offer(self, x: torch.Tensor) -> None:
        key = torch.rand(len(x), generator=self.gen).to(x.device)  # [B]
        if self.x is not None:
            if len(self.key) >= self.k:  # full: only keys below the largest kept can enter
                better = key < self.key.max()
                x, key = x[better], key[better]
            x, key = torch.cat([self.x, x]), torch.cat([self.key, key])
        if len(key) > self.k:
            keep = torch.topk(key, self.k, largest=False).indices
            x, key = x[keep], key[keep]
        self.x, self.key = x, key

    def batches(self, batch_size: int) -> list[torch.Tensor]:
        """The sample in random order, split into batches (a last batch of one dropped)."""
        if self.x is None:
            return []
        order = torch.randperm(len(self.key), generator=self.gen).to(self.x.device)
        x = self.x[order]
        return [x[i:i + batch_size] for i in range(0, len(x), batch_size) if len(x) - i >= 2]


@register_method(
    "contrastive_forget",
    config=ContrastiveForgetConfig,
    scenarios=("sample", "class"),
    summary="KL to uniform on forget, then 8 x [contrast forget vs retain logits; CE on "
            "retain] (fanchuan's FCS, Kaggle #2)",
)
def contrastive_forget(net: nn.Module, retain_loader, forget_loader, val_loader, *,
                       seed: int, cfg: ContrastiveForgetConfig) -> nn.Module:
    """Unlearn by a uniform-target pass, then contrastive forget and CE retain rounds."""
    device = net_device(net)
    forget_gen, train_gen, contrast_gen = (generator(seed, salt) for salt in (0, 1, 2))
    forget_steps = num_batches(forget_loader)
    # The published forget round zips the forget loader with a freshly shuffled retain
    # loader of batch 256, so it sees forget_steps random retain batches per epoch. They
    # are drawn here as a uniform sample of the whole retain set (whatever the loader's
    # order), taken during the previous retain round; the first in one extra pass.
    contrast_size = forget_steps * cfg.batch_size
    contrast = _Reservoir(contrast_size, contrast_gen)
    for x, _ in iter_batches(retain_loader, device):
        contrast.offer(x)
    net.train()

    uniform_opt = sgd(net, cfg.uniform_lr, cfg.momentum)
    for x, _ in shuffled_batches(forget_loader, device, forget_gen):
        descend(uniform_opt, uniform_kl(net(x)))

    forget_opt = sgd(net, cfg.forget_lr, cfg.momentum)
    forget_sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        forget_opt, T_max=max(1, cfg.epochs * forget_steps), eta_min=cfg.forget_lr_min)
    retain_opt = sgd(net, cfg.retain_lr, cfg.momentum, cfg.retain_weight_decay)
    for _ in progress_bar(range(cfg.epochs), cfg.progress, "contrastive_forget"):
        forget = shuffled_batches(forget_loader, device, forget_gen)
        for (xf, _), xr in zip(forget, contrast.batches(cfg.batch_size)):
            with torch.no_grad():
                retain_logits = net(xr)
            descend(forget_opt, contrastive_loss(net(xf), retain_logits, cfg.temperature),
                    forget_sched)
        contrast = _Reservoir(contrast_size, contrast_gen)
        for x, y in shuffled_batches(retain_loader, device, train_gen, cfg.batch_size):
            contrast.offer(x)
            descend(retain_opt, F.cross_entropy(net(x), y))
    return finish(net)
