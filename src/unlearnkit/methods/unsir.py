"""UNSIR (Tarun et al., IEEE TNNLS 2023, arXiv 2111.08947): error-maximising noise, impair, repair.

1. Noise: for each forget label, learnable images that maximise the model's loss on
   that label (the model frozen, BatchNorm in eval mode).
2. Impair: one epoch on the noise (labelled with its label) mixed with a retain subset.
3. Repair: one epoch on the retain subset alone.

The published method removes whole classes and needs only their labels. The kit adds a
sample-level variant for the competition: noise for the labels present in the forget
set, one noise image per forget example.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.base import IMAGE_SHAPE
from ..fused_adam import adam
from ..params import Space, param
from . import register_method
from ._common import (
    MethodConfig,
    check_whole_classes,
    descend,
    finish,
    generator,
    iter_batches,
    net_device,
    progress_bar,
    sample_per_class,
    split_batches,
)

MODES = ("auto", "class", "sample")
NOISE_SPACES = ("data", "raw")


@dataclass
class UnsirConfig(MethodConfig):
    """Hyperparameters of UNSIR (defaults: the official CIFAR-10 notebook's)."""

    mode: str = param("auto", choices=MODES)
    """'class' (published: whole forget classes, 256 noise images each), 'sample' (the
    kit's variant: one noise image per forget example, labelled like it), or 'auto'
    (class when no forget class occurs in the retain set, else sample)."""
    noise_images: int = param(256, min=1, quick=32)
    """Noise images per forget class in class mode (official notebook: 256)."""
    noise_steps: int = param(40, min=0, quick=10, search=Space(5, 80))
    """Adam steps optimising the noise (official notebook: 5 epochs x 8 = 40)."""
    noise_lr: float = param(0.1, min=0, min_open=True, search=Space(0.01, 1.0, log=True))
    """Adam learning rate of the noise (official notebook: 0.1)."""
    noise_l2: float = param(0.1, min=0)
    """Weight of the mean squared L2 norm of each noise image (official notebook: 0.1)."""
    noise_space: str = param("data", choices=NOISE_SPACES)
    """'data': noise is N(0, 1) in standardised units, image = mean + std * noise with the
    retain subset's per-channel statistics, like the official code's normalised inputs;
    'raw': N(0, 1) directly in 0-255 pixels (nearly black images)."""
    retain_per_class: int = param(1000, min=1, quick=30)
    """Retain images per class used by impair and repair (official notebook: 1000)."""
    batch_size: int = param(256, min=2, quick=16)
    """Examples per impair / repair step (official notebook: 256)."""
    impair_lr: float = param(0.02, min=0, min_open=True, quick=1e-3,
                             search=Space(1e-4, 0.05, log=True))
    """Adam learning rate of the impair epoch (official notebook: 0.02; aggressive for a
    converged model)."""
    impair_epochs: int = param(1, min=0)
    """Impair passes over noise + retain subset (official notebook: 1)."""
    repair_lr: float = param(0.01, min=0, min_open=True, quick=1e-3,
                             search=Space(1e-4, 0.05, log=True))
    """Adam learning rate of the repair epoch (official notebook: 0.01)."""
    repair_epochs: int = param(1, min=0, search=Space(1, 5))
    """Repair passes over the retain subset (official notebook: 1)."""


def noise_loss(net: nn.Module, z: torch.Tensor, labels: torch.Tensor, center, scale,
               l2_weight: float) -> torch.Tensor:
    """-CE(net(center + scale * z), labels) + l2_weight * mean_i ||z_i||^2."""
    logits = net(center + scale * z)  # [B, C]
    return -F.cross_entropy(logits, labels) + l2_weight * z.flatten(1).pow(2).sum(1).mean()


def learn_noise(net: nn.Module, labels: torch.Tensor, *, steps: int = 40, lr: float = 0.1,
                l2_weight: float = 0.1, center: float | torch.Tensor = 0.0,
                scale: float | torch.Tensor = 1.0, batch_size: int = 256,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Error-maximising noise images [n, 3, 32, 32], one per entry of ``labels`` [n].

    Each block of ``batch_size`` images starts from N(0, 1) (drawn from ``generator`` on
    the CPU) in units where image = ``center + scale * z``, and takes ``steps`` Adam
    steps on :func:`noise_loss`. ``net`` is used in eval mode (BatchNorm frozen) and its
    parameters get no gradient; its train/eval mode is restored afterwards.
    """
    device = net_device(net)
    labels = labels.to(device).long()
    was_training = net.training
    net.eval()
    out = []
    for start in range(0, len(labels), batch_size):
        y = labels[start:start + batch_size]  # [B]
        z = torch.randn((len(y), *IMAGE_SHAPE), generator=generator).to(device)
        z.requires_grad_(True)  # [B, 3, 32, 32]
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            loss = noise_loss(net, z, y, center, scale, l2_weight)
            (z.grad,) = torch.autograd.grad(loss, [z])
            opt.step()
        out.append((center + scale * z).detach())
    net.train(was_training)
    return torch.cat(out) if out else torch.zeros((0, *IMAGE_SHAPE), device=device)


def _noise_labels(mode: str, forget_y: torch.Tensor, retain_y: torch.Tensor,
                  noise_images: int) -> torch.Tensor:
    """Labels of the noise images: per forget class (class mode) or per forget example."""
    forget_classes = set(forget_y.unique().tolist())
    retain_classes = set(retain_y.unique().tolist())
    if mode == "auto":
        mode = "sample" if forget_classes & retain_classes else "class"
    if mode == "sample":
        return forget_y.clone()
    check_whole_classes("unsir (mode 'class')", forget_classes, retain_classes)
    return torch.tensor(sorted(forget_classes), device=forget_y.device).repeat_interleave(noise_images)


def _fit(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, lr: float, epochs: int,
         batch_size: int, gen: torch.Generator, progress: bool, desc: str) -> None:
    """Plain cross-entropy training of ``net`` with Adam on shuffled batches of (x, y)."""
    opt = adam(net.parameters(), lr=lr)
    net.train()
    for _ in progress_bar(range(epochs), progress, desc):
        for xb, yb in split_batches(x, y, batch_size=batch_size, gen=gen):
            loss = F.cross_entropy(net(xb), yb)
            descend(opt, loss)


@register_method(
    "unsir",
    config=UnsirConfig,
    scenarios=("class", "sample"),
    summary="learn error-maximising noise, impair on it, repair on retain (Tarun 2023)",
)
def unsir(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
          cfg: UnsirConfig) -> nn.Module:
    """Unlearn with UNSIR's noise, impair and repair steps (in place)."""
    device = net_device(net)
    gen = generator(seed)
    retain_x, retain_y = sample_per_class(retain_loader, device, cfg.retain_per_class, gen)
    forget_y = torch.cat([y for _, y in iter_batches(forget_loader, device)])  # [F]
    labels = _noise_labels(cfg.mode, forget_y, retain_y, cfg.noise_images)  # [n]
    center, scale = 0.0, 1.0
    if cfg.noise_space == "data":
        center = retain_x.mean(dim=(0, 2, 3)).reshape(3, 1, 1)  # [3, 1, 1]
        scale = retain_x.std(dim=(0, 2, 3)).reshape(3, 1, 1).clamp(min=1e-3)  # [3, 1, 1]
    noise = learn_noise(net, labels, steps=cfg.noise_steps, lr=cfg.noise_lr,
                        l2_weight=cfg.noise_l2, center=center, scale=scale,
                        batch_size=cfg.noise_images, generator=gen)
    _fit(net, torch.cat([noise, retain_x]), torch.cat([labels, retain_y]), lr=cfg.impair_lr,
         epochs=cfg.impair_epochs, batch_size=cfg.batch_size, gen=gen, progress=cfg.progress,
         desc="unsir impair")
    _fit(net, retain_x, retain_y, lr=cfg.repair_lr, epochs=cfg.repair_epochs,
         batch_size=cfg.batch_size, gen=gen, progress=cfg.progress, desc="unsir repair")
    return finish(net)
