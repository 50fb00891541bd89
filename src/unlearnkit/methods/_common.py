"""Helpers the methods share: batches from any loader, seeded subsets, network copies.

Every helper takes batches through :func:`unlearnkit.data.loaders.unpack`, so dict
batches (the competition's) and ``(x, y)`` tuples both work, and any re-iterable loader
does (a torch ``DataLoader``, the kit's ``TensorLoader``, a list). Randomness comes from
an explicit CPU ``torch.Generator`` seeded by the run's seed, so runs differ by seed
even when the loader itself does not shuffle.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data.loaders import unpack
from ..params import Config

Batch = tuple[torch.Tensor, torch.Tensor]  # ([B, 3, 32, 32] float32, [B] int64)


@dataclass
class MethodConfig(Config):
    """Fields every method's config has (each method's dataclass extends this one)."""

    noun: ClassVar[str] = "hyperparameter"

    progress: bool = False
    """Show tqdm progress bars (off by default: methods print nothing)."""

    def served_scenarios(self, registered: tuple[str, ...]) -> tuple[str, ...]:
        """The scenarios a run with this config serves: the ``registered`` ones (a
        config that delegates to other methods, like a mixture's, narrows them)."""
        return registered

    def delegate(self, seed: int) -> tuple[str, MethodConfig] | None:
        """``(method, config)`` whose run with ``seed`` *is* this config's run with that
        seed (a mixture's component), so a cached run of it can be reused; None here."""
        return None

    def uses_forget(self, registered: bool) -> bool:
        """Whether a run with this config reads the forget set (``registered``: what the
        method declared; a mixture needs it when any of its components does)."""
        return registered


def generator(seed: int, salt: int = 0) -> torch.Generator:
    """A CPU generator for one run (``salt`` separates independent streams)."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + salt)


def net_device(net: nn.Module) -> torch.device:
    """The device ``net``'s parameters live on (CPU for a parameterless net)."""
    param = next(net.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def progress_bar(iterable: Iterable, show: bool, desc: str, total: int | None = None):
    """``tqdm`` over ``iterable`` when ``show``; a silent pass-through otherwise."""
    return tqdm(iterable, desc=desc, total=total, disable=not show, leave=False)


def iter_batches(loader: Iterable, device: torch.device) -> Iterator[Batch]:
    """``(x, y)`` on ``device`` for every batch of ``loader``."""
    for batch in loader:
        yield unpack(batch, device)


def num_batches(loader: Iterable) -> int:
    """``len(loader)`` when it has one, else the batches counted in one pass."""
    try:
        return len(loader)
    except TypeError:
        return sum(1 for _ in loader)


def collect(loader: Iterable, device: torch.device) -> Batch:
    """All of ``loader`` as two tensors on ``device``: ([n, 3, 32, 32], [n])."""
    pairs = list(iter_batches(loader, device))
    if not pairs:
        raise ValueError("the loader is empty: no examples to collect")
    return torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs])


def take_fraction(loader: Iterable, device: torch.device, fraction: float,
                  gen: torch.Generator) -> Batch:
    """A seeded random ``fraction`` of ``loader``'s examples (each kept independently)."""
    xs, ys = [], []
    for x, y in iter_batches(loader, device):
        keep = (torch.rand(len(y), generator=gen) < fraction).to(device)  # [B] bool
        xs.append(x[keep])
        ys.append(y[keep])
    return torch.cat(xs), torch.cat(ys)


def sample_per_class(loader: Iterable, device: torch.device, k: int, gen: torch.Generator,
                     max_fraction: float = 1.0) -> Batch:
    """A seeded uniform subset of at most ``k`` examples per class, in one pass.

    Each example gets a random key and each class keeps its ``k`` smallest keys
    (bottom-k sampling), so the retained set never exceeds ``k`` per class.
    ``max_fraction`` < 1 also caps each class at ``ceil(max_fraction * count)``, so that
    small classes are subsampled too (and runs still differ by seed).
    """
    kept_x, kept_y, kept_key = None, None, None
    counts: dict[int, int] = {}
    for x, y in iter_batches(loader, device):
        for c in y.unique().tolist():
            counts[c] = counts.get(c, 0) + int((y == c).sum())
        key = torch.rand(len(y), generator=gen).to(device)  # [B]
        if kept_x is not None:
            x, y, key = torch.cat([kept_x, x]), torch.cat([kept_y, y]), torch.cat([kept_key, key])
        idx = _bottom_k_per_class(y, key, {c: k for c in counts})
        kept_x, kept_y, kept_key = x[idx], y[idx], key[idx]
    if kept_x is None:
        raise ValueError("the loader is empty: no examples to sample from")
    caps = {c: min(k, math.ceil(max_fraction * n)) for c, n in counts.items()}
    idx = _bottom_k_per_class(kept_y, kept_key, caps)
    return kept_x[idx], kept_y[idx]


def _bottom_k_per_class(y: torch.Tensor, key: torch.Tensor, caps: dict[int, int]) -> torch.Tensor:
    """Indices of the ``caps[c]`` smallest keys of every class ``c`` in ``y``."""
    parts = []
    for c in y.unique().tolist():
        members = torch.nonzero(y == c).flatten()  # [n_c]
        order = torch.argsort(key[members])[: caps[c]]
        parts.append(members[order])
    return torch.sort(torch.cat(parts)).values


def shuffled_batches(loader: Iterable, device: torch.device, gen: torch.Generator,
                     batch_size: int | None = None, buffer_size: int = 2048) -> Iterator[Batch]:
    """Batches of ``loader`` re-mixed through a seeded shuffle buffer.

    Examples are pooled until ``buffer_size`` are held, then permuted and emitted in
    batches of ``batch_size`` (default: the loader's own batch size). The batch
    composition thus depends on the seed even for a loader that never shuffles, while
    memory stays bounded for a large retain set. A last batch of one example is dropped
    (see :func:`split_batches`).
    """
    held_x, held_y = [], []
    size = 0
    for x, y in iter_batches(loader, device):
        batch_size = batch_size or len(y)
        held_x.append(x)
        held_y.append(y)
        size += len(y)
        if size >= buffer_size:
            pool_x, pool_y = _permute(torch.cat(held_x), torch.cat(held_y), gen)
            full = (size // batch_size) * batch_size
            yield from split_batches(pool_x[:full], pool_y[:full], batch_size=batch_size)
            held_x, held_y, size = [pool_x[full:]], [pool_y[full:]], size - full
    if size:
        pool_x, pool_y = _permute(torch.cat(held_x), torch.cat(held_y), gen)
        yield from split_batches(pool_x, pool_y, batch_size=batch_size)


def _permute(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> Batch:
    """``x`` and ``y`` in one seeded random order."""
    order = torch.randperm(len(y), generator=gen).to(y.device)
    return x[order], y[order]


def split_batches(x: torch.Tensor, *rest: torch.Tensor, batch_size: int,
                  gen: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, ...]]:
    """Consecutive batches of ``(x, *rest)``, in a seeded random order when ``gen`` is set.

    A batch of a single example is skipped: BatchNorm cannot train on it (resnet18's
    last feature maps are 1x1 at 32 px), and one example more or less does not matter.
    """
    n = len(x)
    order = torch.randperm(n, generator=gen).to(x.device) if gen is not None else None
    for start in range(0, n, batch_size):
        if n - start < 2:
            break
        idx = slice(start, start + batch_size) if order is None else order[start:start + batch_size]
        yield (x[idx], *(t[idx] for t in rest))


def classes_in(loader: Iterable) -> set[int]:
    """The labels that occur in ``loader`` (one pass)."""
    found: set[int] = set()
    for _, y in iter_batches(loader, None):
        found.update(y.unique().tolist())
    return found


def check_whole_classes(method: str, forget_classes: set[int], retain_classes: set[int]) -> None:
    """Raise when a forget class also occurs in the retain set (not a class removal)."""
    shared = sorted(forget_classes & retain_classes)
    if shared:
        raise ValueError(
            f"{method} serves only class removal (the forget set must be whole classes), "
            f"but forget class(es) {shared} also occur in the retain set: this is "
            f"sample-level forgetting; use a method that serves 'sample' scenarios"
        )


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
               T: float) -> torch.Tensor:
    """KL(softmax(t/T) || softmax(s/T)) summed over classes and the batch, * T^2 / B."""
    log_q = F.log_softmax(student_logits / T, dim=1)
    log_p = F.log_softmax(teacher_logits / T, dim=1)
    return (log_p.exp() * (log_p - log_q)).sum() * T ** 2 / len(student_logits)


def frozen_copy(net: nn.Module) -> nn.Module:
    """A deep copy of ``net`` in eval mode with gradients off (a fixed teacher)."""
    twin = copy.deepcopy(net).eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


def reinit_copy(net: nn.Module, seed: int) -> nn.Module:
    """A frozen copy of ``net`` with every module re-initialised from ``seed``
    (:func:`reset_modules_`: BatchNorm's running statistics too, the same on any device)."""
    twin = copy.deepcopy(net)
    reset_modules_([twin], seed)
    return frozen_copy(twin)


@torch.no_grad()
def reset_modules_(modules: Iterable[nn.Module], seed: int) -> None:
    """Re-initialise every layer inside ``modules`` in place (``reset_parameters`` and
    BatchNorm's running statistics), drawn on the CPU from ``seed`` inside a forked RNG:
    the same weights on any device, the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in modules:
            twin = copy.deepcopy(module).cpu()
            for layer in twin.modules():
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
                if hasattr(layer, "reset_running_stats"):
                    layer.reset_running_stats()
            for mine, fresh in zip(module.state_dict().values(), twin.state_dict().values()):
                mine.copy_(fresh)


def cosine_lambda(total_steps: int):
    """LR factor 0.5 * (1 + cos(pi * t / T)), held at 0 after ``total_steps``."""
    total = max(1, total_steps)
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def cycle(loader: Iterable, device: torch.device, gen: torch.Generator,
          batch_size: int | None = None) -> Iterator[Batch]:
    """Endless shuffled batches of ``loader`` (restarted after each pass)."""
    while True:
        empty = True
        for batch in shuffled_batches(loader, device, gen, batch_size):
            empty = False
            yield batch
        if empty:
            raise ValueError(
                "the loader yields fewer than 2 examples: too few to train on "
                "(BatchNorm needs 2 per batch)"
            )


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor, sched=None) -> None:
    """One optimiser step on ``loss``: gradients cleared, backward, step, then the schedule."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if sched is not None:
        sched.step()


def finish(net: nn.Module) -> nn.Module:
    """``net`` in eval mode: how every method hands it back."""
    return net.eval()


def named_convs(net: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Every ``Conv2d`` of ``net`` with its qualified name, in module order."""
    return [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]


def first_conv(net: nn.Module) -> nn.Conv2d:
    """The network's first convolution (resnet18's ``conv1``); a clear error if none."""
    convs = named_convs(net)
    if not convs:
        raise ValueError(f"{type(net).__name__} has no Conv2d layer: this method resets or "
                         f"perturbs convolutions and cannot run on it")
    return convs[0][1]


def linear_head(net: nn.Module, method: str) -> nn.Linear:
    """``net.fc``, the classifier every kit network has; a clear error otherwise."""
    fc = getattr(net, "fc", None)
    if not isinstance(fc, nn.Linear):
        raise ValueError(f"{method} needs the network's linear head at net.fc, and "
                         f"{type(net).__name__} has none")
    return fc


def sgd(net: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
    """SGD over every parameter of ``net``."""
    return torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


@torch.no_grad()
def num_outputs(net: nn.Module, x: torch.Tensor) -> int:
    """Number of logits ``net`` produces (``net.fc.out_features``, else one eval forward)."""
    fc = getattr(net, "fc", None)
    if isinstance(fc, nn.Linear):
        return fc.out_features
    was_training = net.training
    out = net.eval()(x[:2]).shape[1]
    net.train(was_training)
    return out
