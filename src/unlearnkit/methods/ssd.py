"""SSD, Selective Synaptic Dampening (Foster, Schoepf, Brintrup, AAAI 2024, arXiv 2308.07707).

Retrain-free: no gradient step is taken. Two diagonal importances are estimated with the
network in eval mode, each the mean over batches of the squared cross-entropy gradient:
I_D over the full training data (retain + forget) and I_f over the forget set. Every
parameter entry much more important to the forget set than to the data as a whole,
I_f > alpha * I_D, is dampened: theta <- theta * min(lambda * I_D / I_f, 1).

SSD as published is deterministic, and identical runs score 0 on the competition's
metric; this kit's default draws the retain examples behind I_D and the batch
composition from the seed (``deterministic: true`` restores the published behaviour).

Sources: ``methods.md`` (baselines) and ``methods-wave2.md`` section 3 (the official
repository's ResNet-18 random-forgetting settings); nothing here is copied code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..params import Space, param
from . import register_method
from ._common import (
    Batch,
    MethodConfig,
    collect,
    finish,
    generator,
    iter_batches,
    net_device,
    num_batches,
    shuffled_batches,
)


@dataclass
class SSDConfig(MethodConfig):
    """Hyperparameters of SSD (defaults: the official ResNet-18 random-forgetting run)."""

    alpha: float = param(10.0, min=0, search=Space(1.0, 100.0, log=True))
    """Selection weighting: dampen entries where I_f > alpha * I_D (official ResNet-18
    random forgetting: 10)."""
    lambda_: float = param(1.0, min=0, min_open=True, search=Space(0.1, 5.0, log=True))
    """Dampening constant: theta *= min(lambda * I_D / I_f, 1) (official: 1)."""
    importance_fraction: float = param(0.5, min=0, max=1, min_open=True, search=Space(0.1, 1.0))
    """Share of the retain set, drawn per run from the seed (each example kept
    independently), that I_D is computed over together with all of the forget set (kit's
    choice: 0.5; published: 1, the whole training set). The kit's source of run-to-run
    variation, as published SSD gives identical networks (metric score 0): a per-run
    subsample is a bootstrap-like draw of the importance estimate, 0.5 makes two runs'
    subsets differ most (each example's membership has the largest variance) and halves
    the cost of I_D, and the batches are also grouped by a seeded shuffle."""
    deterministic: bool = False
    """True = the published, deterministic SSD: I_D over the whole retain set in the
    loaders' own order (``importance_fraction`` ignored); every seed then gives the same
    network (kit's default: False, see ``importance_fraction``)."""


def dampen_(params: Iterable[torch.Tensor], imp_full: Iterable[torch.Tensor],
            imp_forget: Iterable[torch.Tensor], alpha: float, lam: float) -> int:
    """theta <- theta * min(lam * I_D / I_f, 1) wherever I_f > alpha * I_D, in place.

    Returns the number of entries selected (those with I_f > alpha * I_D).
    """
    selected = 0
    with torch.no_grad():
        for p, i_d, i_f in zip(params, imp_full, imp_forget, strict=True):
            chosen = i_f > alpha * i_d
            factor = (lam * i_d / i_f.masked_fill(~chosen, 1.0)).clamp(max=1.0)
            p.mul_(torch.where(chosen, factor, torch.ones_like(factor)).to(p.dtype))
            selected += int(chosen.sum())
    return selected


def importances(net: nn.Module, batches: Iterable[Batch]) -> list[torch.Tensor]:
    """Mean over ``batches`` of the squared gradient of the batch's mean cross-entropy,
    one tensor per parameter of ``net`` (float32, zeros where a gradient is missing).
    The caller sets the mode (eval, as published)."""
    params = list(net.parameters())
    total = [torch.zeros_like(p, dtype=torch.float32) for p in params]
    live = [i for i, p in enumerate(params) if p.requires_grad]
    count = 0
    for x, y in batches:
        if len(y) == 0:
            continue
        grads = torch.autograd.grad(F.cross_entropy(net(x), y), [params[i] for i in live],
                                    allow_unused=True)
        for i, g in zip(live, grads):
            if g is not None:
                total[i].add_(g.float().square())
        count += 1
    if count == 0:
        raise ValueError("ssd: no examples to compute an importance over")
    return [t / count for t in total]


def _batch_size(loader) -> int:
    """Size of the loader's first batch (its batch size); 0 for an empty loader."""
    for _, y in iter_batches(loader, None):
        return len(y)
    return 0


def full_data_batches(retain_loader, forget_x: torch.Tensor, forget_y: torch.Tensor,
                      device: torch.device, gen: torch.Generator | None,
                      fraction: float = 1.0) -> Iterator[Batch]:
    """Batches of retain + forget: the training data as a whole.

    Each retain batch (only a ``fraction`` of its examples, drawn with ``gen``, when
    ``fraction`` < 1) is joined by its even share of the forget set, so that forget
    examples are spread over the batches as in a shuffled training loader. With ``gen``
    the forget order and the grouping into batches (a seeded shuffle buffer, the retain
    loader's batch size) are drawn from it; without, everything keeps the loaders' order.
    """
    n_batches = max(1, num_batches(retain_loader))
    n_forget = len(forget_y)
    order = (torch.randperm(n_forget, generator=gen) if gen is not None
             else torch.arange(n_forget)).to(forget_y.device)

    def joined():
        for i, (x, y) in enumerate(iter_batches(retain_loader, device)):
            if gen is not None and fraction < 1:
                keep = (torch.rand(len(y), generator=gen) < fraction).to(y.device)
                x, y = x[keep], y[keep]
            share = order[i * n_forget // n_batches:(i + 1) * n_forget // n_batches]
            yield torch.cat([x, forget_x[share]]), torch.cat([y, forget_y[share]])

    if gen is None:
        yield from joined()
    else:
        yield from shuffled_batches(joined(), device, gen, batch_size=_batch_size(retain_loader))


@register_method(
    "ssd",
    config=SSDConfig,
    scenarios=("sample", "class"),
    summary="dampen the weights far more important to forget than to all data, "
            "no training (Foster et al. 2024); seeded importance subsample",
)
def ssd(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
        cfg: SSDConfig) -> nn.Module:
    """Unlearn by selective synaptic dampening (in place); no gradient step is taken.

    The validation loader is not used.
    """
    device = net_device(net)
    gen = None if cfg.deterministic else generator(seed)
    forget_x, forget_y = collect(forget_loader, device)  # [F, 3, 32, 32], [F]
    was_training = net.training
    net.eval()
    try:
        imp_full = importances(net, full_data_batches(
            retain_loader, forget_x, forget_y, device, gen, cfg.importance_fraction))
        forget_batches = (iter_batches(forget_loader, device) if gen is None
                          else shuffled_batches(forget_loader, device, gen))
        imp_forget = importances(net, forget_batches)
    finally:
        net.train(was_training)
    dampen_(net.parameters(), imp_full, imp_forget, cfg.alpha, cfg.lambda_)
    return finish(net)
