"""PRMQ: prune, re-initialise, fine-tune with an entropy term, quantise (Oleszko, Kaggle #5).

Sebastian Oleszko's NeurIPS 2023 unlearning entry (4th prize, Kaggle private #5, private
score 0.0863). The network forgets by losing almost all of its weights:

1. global L1 (magnitude) pruning of 99% of the weights *and* biases of every Conv2d and
   Linear layer, taken together;
2. the pruned weights are re-drawn from U(-sqrt(k), sqrt(k)), k = 1 / fan_in (PyTorch's
   default range), the pruned biases stay 0, BatchNorm is untouched;
3. 3.2 epochs of SGD on the retain set with a class-weighted cross-entropy (weight of
   class c = count_c ** -0.1) plus the mean squared difference between the per-example
   output entropies of the network and of the original (frozen) model;
4. a round trip of every float tensor through fp16.

Sources: the write-up and DeepUnlearn's port (``kgltop4``), as summarised in
``methods-wave2.md`` section 2.4; nothing here is copied code.
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
    frozen_copy,
    generator,
    iter_batches,
    net_device,
    num_batches,
    num_outputs,
    progress_bar,
)

_PRUNABLE = (nn.Conv2d, nn.Linear)


@dataclass
class PruneReinitConfig(MethodConfig):
    """Hyperparameters of PRMQ (defaults: Oleszko's notebook, via DeepUnlearn kgltop4)."""

    prune_ratio: float = param(0.99, min=0, max=1, min_open=True, max_open=True,
                               search=Space(0.9, 0.999))
    """Share of all Conv2d/Linear weights and biases pruned by magnitude, globally, and
    re-initialised (Oleszko's write-up via DeepUnlearn kgltop4: 0.99)."""
    epochs: float = param(3.2, min=0, min_open=True, search=Space(1.0, 5.0))
    """Fine-tuning length in retain epochs: int(len(retain_loader) * epochs) steps, the
    retain batches cycling (Oleszko via kgltop4: 3.2)."""
    lr: float = param(5e-4, min=0, min_open=True, search=Space(1e-4, 5e-3, log=True))
    """SGD learning rate, constant (Oleszko via kgltop4: 5e-4, no scheduler)."""
    momentum: float = param(0.9, min=0, max=1, max_open=True)
    """SGD momentum (Oleszko via kgltop4: 0.9)."""
    weight_decay: float = param(5e-4, min=0)
    """SGD weight decay (Oleszko via kgltop4: 5e-4)."""
    class_weight_power: float = param(0.1, min=0, max=2)
    """Class c's cross-entropy weight is count_c ** -power, counts over the retain set;
    0 = unweighted (Oleszko's "w^(0.1)", via kgltop4: 0.1)."""
    entropy_weight: float = param(1.0, min=0, search=Space(0.1, 10.0, log=True))
    """Weight of MSE(H(student), H(original)) of the per-example output entropies on the
    retain batch (Oleszko via kgltop4: 1, a plain sum with the cross-entropy)."""
    fp16_roundtrip: bool = True
    """Cast every float tensor to fp16 and back at the end (Oleszko's "Quantize" step:
    on); values beyond fp16's range keep their value (see the docs)."""


def magnitude_prune_masks(tensors: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    """Boolean masks (True = pruned) of the ``round(ratio * N)`` smallest-|value| entries
    over all ``tensors`` together (N entries in all), ties broken by position.

    This is global L1-unstructured pruning: one threshold for every tensor.
    """
    flat = torch.cat([t.detach().abs().flatten().float() for t in tensors])  # [N]
    k = round(ratio * flat.numel())
    pruned = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)  # [N]
    if k > 0:
        order = torch.sort(flat, stable=True).indices  # [N], smallest first
        pruned[order[:k]] = True
    masks, start = [], 0
    for t in tensors:
        masks.append(pruned[start:start + t.numel()].reshape(t.shape))
        start += t.numel()
    return masks


def reinit_bound(weight: torch.Tensor) -> float:
    """sqrt(k), k = 1 / fan_in: Conv2d C_in/groups * k_h * k_w, Linear in_features."""
    return float(weight[0].numel()) ** -0.5


@torch.no_grad()
def prune_and_reinit_(net: nn.Module, ratio: float, gen: torch.Generator) -> int:
    """Prune ``ratio`` of all Conv2d/Linear weights and biases of ``net`` globally by
    magnitude; re-draw pruned weights from U(-sqrt(k), sqrt(k)) (k = 1 / fan_in) with
    ``gen`` (on the CPU, so any device gives the same draw), set pruned biases to 0.
    Returns the number of pruned entries."""
    layers = [m for m in net.modules() if isinstance(m, _PRUNABLE)]
    if not layers:
        raise ValueError(f"prune_reinit prunes Conv2d and Linear layers, and "
                         f"{type(net).__name__} has none")
    tensors = [p for m in layers for p in (m.weight, m.bias) if p is not None]
    masks = iter(magnitude_prune_masks(tensors, ratio))
    count = 0
    for m in layers:
        mask = next(masks)
        bound = reinit_bound(m.weight)
        fresh = (torch.rand(m.weight.shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        m.weight.copy_(torch.where(mask, fresh.to(m.weight), m.weight))
        count += int(mask.sum())
        if m.bias is not None:
            mask = next(masks)
            m.bias.masked_fill_(mask, 0.0)
            count += int(mask.sum())
    return count


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-example entropy of softmax(logits) [B, C] -> [B] (nats)."""
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def entropy_matching_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """mean_i (H(softmax(s_i)) - H(softmax(t_i)))**2: the student's output entropies
    pulled to the original model's, example by example (both [B, C])."""
    return F.mse_loss(entropy(student_logits), entropy(teacher_logits))


def power_class_weights(counts: torch.Tensor, power: float) -> torch.Tensor:
    """count_c ** -power per class [C]; 1 for a class with no example (never used)."""
    counts = counts.double()
    return torch.where(counts > 0, counts.clamp(min=1) ** -power, torch.ones_like(counts)).float()


def _class_counts(loader, num_classes: int) -> torch.Tensor:
    """Examples per label in ``loader`` [num_classes] (one pass, on the CPU)."""
    counts = torch.zeros(num_classes, dtype=torch.int64)
    for _, y in iter_batches(loader, None):
        counts += torch.bincount(y.cpu(), minlength=num_classes)[:num_classes]
    return counts


@torch.no_grad()
def fp16_roundtrip_(net: nn.Module) -> None:
    """Round every float parameter and buffer of ``net`` to fp16 and back, in place.

    Entries beyond fp16's range (|x| > 65504, e.g. BN running variances on raw 0-255
    inputs) would become inf: those keep their value; everything else is rounded.
    """
    for t in list(net.parameters()) + list(net.buffers()):
        if t.is_floating_point():
            rounded = t.to(torch.float16).to(t.dtype)
            t.copy_(torch.where(torch.isfinite(rounded), rounded, t))


@register_method(
    "prune_reinit",
    config=PruneReinitConfig,
    scenarios=("sample", "class"),
    summary="prune 99% of weights by magnitude, re-init, fine-tune with an entropy term, "
            "fp16 round trip (Oleszko, Kaggle #5); no forget set",
    needs_forget=False,
)
def prune_reinit(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
                 cfg: PruneReinitConfig) -> nn.Module:
    """Unlearn by pruning and re-initialising almost every weight, then re-learning the
    retain set under an entropy-matching term against the original (in place).

    Uses no forget data (nor the validation loader): only the retain set and the
    original's outputs on it.
    """
    device = net_device(net)
    gen = generator(seed)
    original = frozen_copy(net)
    num_classes = num_outputs(original, next(iter_batches(retain_loader, device))[0])
    weight = power_class_weights(_class_counts(retain_loader, num_classes),
                                 cfg.class_weight_power).to(device)
    prune_and_reinit_(net, cfg.prune_ratio, gen)
    steps = int(num_batches(retain_loader) * cfg.epochs)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    batches = cycle(retain_loader, device, gen)
    net.train()
    for _ in progress_bar(range(steps), cfg.progress, "prune_reinit"):
        x, y = next(batches)
        logits = net(x)
        with torch.no_grad():
            teacher = original(x)
        loss = F.cross_entropy(logits, y, weight=weight)
        if cfg.entropy_weight:
            loss = loss + cfg.entropy_weight * entropy_matching_loss(logits, teacher)
        descend(opt, loss)
    if cfg.fp16_roundtrip:
        fp16_roundtrip_(net)
    return finish(net)
