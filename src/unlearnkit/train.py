"""The training recipe: the competition scorer's by default, every value configurable.

The scorer trained its original and retrained models for 30 epochs with Adam
(lr 1e-4, weight decay 5e-3), cosine annealing stepped per epoch, cross-entropy
weighted by 1/count of each class, batch 64, no augmentation, raw 0-255 inputs.
One seed fixes both the initialisation (:func:`init_model`) and the data order.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .cpu_speed import on_cpu
from .data.base import ImageSet
from .data.loaders import TensorLoader, unpack
from .fused_adam import adam
from .models import build_model
from .params import Config, param

TRAINER = 3
"""Version of the training code, part of every benchmark's cache key: bumped when the
code changes the models it trains or the time it takes, so models cached by another
version are never mixed with new ones, nor their times read as one retrain's by the time
rule. 2: fused Adam and one-pixel convolutions on the CPU (a ResNet-18 step 1.5x faster);
3: Adam and the one-pixel gradients in place on channels_last tensors, and an allocator
that keeps freed memory (a further 1.2x; docs/benchmarks.md)."""


@dataclass
class TrainConfig(Config):
    """Hyperparameters of one training run (defaults: the competition scorer's); every
    value is checked when built (:mod:`unlearnkit.params`), from a YAML or from code."""

    label: ClassVar[str] = "train"

    epochs: int = param(30, min=0)
    """Passes over the training data (scorer: 30; 0 leaves the model untrained: tests,
    rehearsals; a benchmark needs at least 1)."""
    lr: float = param(1e-4, min=0, min_open=True)
    """Adam learning rate (scorer: 1e-4)."""
    weight_decay: float = param(5e-3, min=0)
    """Adam's L2 weight decay (scorer: 5e-3)."""
    batch_size: int = param(64, min=1)
    """Examples per step (scorer: 64)."""
    class_weighted: bool = param(True)
    """Weight cross-entropy by 1/count of each class (scorer: yes)."""
    cosine: bool = param(True)
    """Cosine annealing over ``epochs``, stepped once per epoch (scorer: yes)."""
    amp: bool = param(True)
    """bf16 autocast on CUDA (ignored on the CPU)."""
    channels_last: bool = param(True)
    """channels_last memory format (faster for convolutions on CUDA and on the CPU)."""

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "") -> TrainConfig:
        """From plain data (a benchmark's ``train:``, mock.json): names, types and
        ranges checked."""
        if d is not None and not isinstance(d, dict):
            raise ValueError(f"train must be a mapping of training option: value, got "
                             f"{d!r}; valid options: {', '.join(cls.field_names())}")
        return cls.build(d, where=where)


def init_model(name: str, seed: int, num_classes: int = 10) -> nn.Module:
    """A network initialised from ``seed`` alone (same seed, same weights)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(name, num_classes)


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """1/count per class (0 for a class absent from ``labels``), float32 [C]."""
    counts = torch.bincount(labels.cpu().long(), minlength=num_classes).float()
    return torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts))


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when enabled; a no-op context elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train(net: nn.Module, data: ImageSet, cfg: TrainConfig | None = None, *, seed: int = 0,
          device: str | torch.device = "cpu", num_classes: int = 10,
          progress: bool = True, desc: str = "train") -> nn.Module:
    """Train ``net`` in place on ``data`` with the recipe; return it in eval mode."""
    cfg = cfg or TrainConfig()
    device = torch.device(device)
    on_cpu(net.to(device), device)
    if cfg.channels_last:
        net.to(memory_format=torch.channels_last)
    loader = TensorLoader(data, cfg.batch_size, shuffle=True, seed=seed, device=device)
    weight = class_weights(data.labels, num_classes).to(device) if cfg.class_weighted else None
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    opt = adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs) if cfg.cosine else None
    net.train()
    bar = tqdm(range(cfg.epochs), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        for batch in loader:
            x, y = unpack(batch, device)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, cfg.amp):
                loss = loss_fn(net(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if sched is not None:
            sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return net.eval()


@torch.no_grad()
def predict_logits(net: nn.Module, data: ImageSet, *, device: str | torch.device = "cpu",
                   batch_size: int = 1024) -> np.ndarray:
    """Logits of ``net`` (eval mode, float32) on every item of ``data``, in order: [n, C]."""
    device = torch.device(device)
    was_training = net.training
    net.eval().to(device)
    out = []
    for i in range(0, len(data), batch_size):
        x = data.images[i:i + batch_size].to(device)
        out.append(net(x).float().cpu())
    net.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 10), np.float32)


def accuracy(net: nn.Module, data: ImageSet, *, device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy of ``net`` on ``data``."""
    logits = predict_logits(net, data, device=device)
    return float((logits.argmax(1) == data.labels.numpy()).mean()) if len(data) else float("nan")
