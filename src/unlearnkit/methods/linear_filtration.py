"""Linear Filtration (Baumhauer, Schoettle, Zeppelzauer, Machine Learning 2022, arXiv 2002.02730).

Class removal without gradient steps: a filter matrix F maps the logits of the K
classes to K - f logits so that every class's mean logit vector lands on a chosen
target (for a forgotten class: a neutral one), and F is folded into the linear head.
The checkpoint keeps 10 outputs: each removed class gets a constant low logit.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from ..params import param
from . import register_method
from ._common import (
    MethodConfig,
    check_whole_classes,
    classes_in,
    finish,
    generator,
    net_device,
    sample_per_class,
)

MODES = ("naive", "normalization", "randomization", "zeroing")


@dataclass
class LinearFiltrationConfig(MethodConfig):
    """Hyperparameters of Linear Filtration (defaults: the paper's recommended setting)."""

    mode: str = param("normalization", choices=MODES)
    """Target of each forgotten class: 'naive' (drop its logit), 'normalization' (the
    paper's recommendation), 'randomization' or 'zeroing'."""
    samples_per_class: int = param(100, min=1)
    """Labelled examples per class for the mean logit vectors (paper: 10, 100 or all)."""
    max_fraction: float = param(0.8, min=0, max=1, min_open=True)
    """At most this share of each class's examples is used (the kit's choice), so runs
    differ by seed even when a class has fewer than ``samples_per_class`` examples."""
    removed_logit: float = param(-50.0)
    """Constant logit of each removed class (weight row 0, this bias). The kit's choice:
    far below any kept logit, finite in fp16/bf16, and exp(-50 - max) stays far above the
    metric's 1e-45 floor in float64, so the confidence still varies with the kept logits."""


def _kept_and_forgotten(num_classes: int, forget_classes) -> tuple[list[int], list[int]]:
    """Sorted kept and forgotten class indices, checked against ``num_classes``."""
    forget = sorted({int(c) for c in forget_classes})
    if not forget:
        raise ValueError("forget_classes is empty: name at least one class to remove")
    if forget[0] < 0 or forget[-1] >= num_classes:
        raise ValueError(f"forget classes {forget} out of range for {num_classes} classes")
    kept = [c for c in range(num_classes) if c not in forget]
    if not kept:
        raise ValueError("cannot remove every class: at least one must be kept")
    return kept, forget


def filtration_targets(mean_logits: torch.Tensor, forget_classes, mode: str,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """B [(K - f), K] float64: A without the forgotten rows, forgotten columns per ``mode``.

    ``A`` has column c = ``mean_logits[c]``. For 'naive' B is left as the kept rows of A.
    """
    A = mean_logits.detach().double().cpu().T  # [K, K], column c = class c's mean logits
    kept, forget = _kept_and_forgotten(A.shape[0], forget_classes)
    B = A[kept].clone()  # [K - f, K]
    for c in forget:
        if mode == "normalization":
            B[:, c] += B[:, kept].mean() - B[:, c].mean()
        elif mode == "randomization":
            B[:, c] = torch.randn(len(kept), generator=generator, dtype=torch.float64)
        elif mode == "zeroing":
            B[:, c] = 0.0
        elif mode != "naive":
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return B


def filtration_matrix(mean_logits: torch.Tensor, forget_classes, mode: str = "normalization",
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """The filter F [(K - f), K] float64 with ``F @ mean_logits[c] == b_c`` for every c.

    ``mean_logits[c]`` is class c's mean logit vector; F = B A^-1 (see
    :func:`filtration_targets`); 'naive' gives the kept rows of the identity.
    """
    K = mean_logits.shape[0]
    if tuple(mean_logits.shape) != (K, K):
        raise ValueError(f"mean_logits must be K x K, got {list(mean_logits.shape)}")
    kept, _ = _kept_and_forgotten(K, forget_classes)
    if mode == "naive":
        return torch.eye(K, dtype=torch.float64)[kept]
    A = mean_logits.detach().double().cpu().T  # [K, K]
    B = filtration_targets(mean_logits, forget_classes, mode, generator)  # [K - f, K]
    try:
        return torch.linalg.solve(A.T, B.T).T  # F A = B  <=>  A^T F^T = B^T
    except RuntimeError as err:  # torch.linalg.LinAlgError
        raise ValueError(
            "the matrix of mean logit vectors is singular: two classes have (nearly) the "
            "same mean logits; use more samples per class or a better-trained model"
        ) from err


def _labelled_sample(val_loader, retain_loader, forget_loader, device, num_classes: int,
                     k: int, max_fraction: float, gen: torch.Generator):
    """Up to ``k`` labelled images per class: from validation, else retain + forget."""
    parts = []
    if val_loader is not None:
        parts.append(sample_per_class(val_loader, device, k, gen, max_fraction))
    missing = set(range(num_classes)) - {int(c) for p in parts for c in p[1].unique()}
    if missing:
        x, y = sample_per_class(itertools.chain(retain_loader, forget_loader), device, k, gen,
                                max_fraction)
        keep = torch.isin(y, torch.tensor(sorted(missing), device=y.device))
        parts.append((x[keep], y[keep]))
    x = torch.cat([p[0] for p in parts])  # [n, 3, 32, 32]
    y = torch.cat([p[1] for p in parts])  # [n]
    absent = sorted(set(range(num_classes)) - set(y.unique().tolist()))
    if absent:
        raise ValueError(
            f"no labelled example of class(es) {absent} in the validation, retain or forget "
            f"loaders: linear filtration needs a mean logit vector for every class"
        )
    return x, y


@torch.no_grad()
def mean_logits_per_class(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
                          num_classes: int, batch_size: int = 512) -> torch.Tensor:
    """[K, K] float64: row c = mean logit vector of ``net`` (eval) over class c's images."""
    net.eval()
    logits = torch.cat([net(x[i:i + batch_size]).double() for i in range(0, len(x), batch_size)])
    sums = torch.zeros(num_classes, logits.shape[1], dtype=torch.float64, device=logits.device)
    sums.index_add_(0, y, logits)  # [K, K]
    counts = torch.bincount(y, minlength=num_classes).clamp(min=1).double()  # [K]
    return (sums / counts[:, None]).cpu()


@torch.no_grad()
def fold_into_head(fc: nn.Linear, F: torch.Tensor, forget_classes, removed_logit: float) -> None:
    """Replace ``fc`` by F applied to its outputs; removed classes get a constant logit."""
    if fc.bias is None:
        raise ValueError("linear filtration needs a linear head with a bias (net.fc.bias)")
    kept, forget = _kept_and_forgotten(fc.out_features, forget_classes)
    F = F.to(fc.weight.device)
    W = fc.weight.double()  # [K, d]
    b = fc.bias.double()  # [K]
    new_W = torch.zeros_like(W)
    new_b = torch.full_like(b, float(removed_logit))
    new_W[kept] = F @ W  # [K - f, d]
    new_b[kept] = F @ b  # [K - f]
    fc.weight.copy_(new_W.to(fc.weight.dtype))
    fc.bias.copy_(new_b.to(fc.bias.dtype))


@register_method(
    "linear_filtration",
    config=LinearFiltrationConfig,
    scenarios=("class",),
    summary="fold a logit filter into the head, mapping class means to targets (Baumhauer 2022)",
)
def linear_filtration(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
                      cfg: LinearFiltrationConfig) -> nn.Module:
    """Remove the forget set's classes by filtering the logits (in place, no training)."""
    forget_classes = classes_in(forget_loader)
    check_whole_classes("linear_filtration", forget_classes, classes_in(retain_loader))
    fc = getattr(net, "fc", None)
    if not isinstance(fc, nn.Linear):
        raise ValueError("linear filtration needs the network's linear head at net.fc")
    gen = generator(seed)
    x, y = _labelled_sample(val_loader, retain_loader, forget_loader, net_device(net),
                            fc.out_features, cfg.samples_per_class, cfg.max_fraction, gen)
    mean_logits = mean_logits_per_class(net, x, y, fc.out_features)  # [K, K]
    F = filtration_matrix(mean_logits, forget_classes, cfg.mode, gen)  # [K - f, K]
    fold_into_head(fc, F, forget_classes, cfg.removed_logit)
    return finish(net)
