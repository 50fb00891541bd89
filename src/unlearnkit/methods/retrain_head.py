"""EU-k: re-initialise the network's last layers and retrain them alone on the retain set.

Goel et al. 2022 ("Towards Adversarial Evaluation of Machine Unlearning", arXiv
2201.06640) call it *exact unlearning of the last k layers* (EU-k): the layers before the
last k are frozen, the last k are re-initialised and trained from scratch on the retain
set with the original recipe. The retrained part is then exactly what retraining it on
the frozen trunk's features gives; only what the trunk memorised of the forget set
survives, and every run draws fresh layers, so the runs differ as retrained models do.

The frozen trunk runs once over the retain set, in eval mode; the retrained layers train
on those features, so a run costs one forward pass plus the training of a smaller
network. ``first_layer`` says where the cut is (:func:`stages` lists a network's layers
in forward order): the first layer retrained, every layer from it on being retrained; by
default the last convolutional stage and the head, since a CNN memorises in its convs
too. On the competition's resnet18 that stage, ``layer4``, holds 72% of the weights but
runs on 1x1 maps at 32 px, so retraining it costs little.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..fused_adam import adam
from ..metrics.competition import logit_scaled_confidence
from ..models import SmallCNN, SmallCNNMLP
from ..params import Space, param
from ..train import class_weights
from . import register_method
from ._common import (
    MethodConfig,
    collect,
    cosine_lambda,
    cycle,
    descend,
    distill_kl,
    finish,
    generator,
    iter_batches,
    linear_head,
    net_device,
    num_batches,
    progress_bar,
    reset_modules_,
    shuffled_batches,
    split_batches,
)
from ._tuned import calibrate
from .ssd import SSDConfig, ssd

_NAME = "retrain_head"
_TRUNK_SALT = 0x7E0C  # the trunk noise's own stream: the head's draws stay as they were
_POLISH_SALT = 0x9011  # the polish's batch order


@dataclass
class RetrainHeadConfig(MethodConfig):
    """Hyperparameters of EU-k (defaults: the recipe of the kit's CPU benchmarks, which
    trained the original, as EU-k retrains with the original's recipe)."""

    first_layer: str = param("auto")
    """The first layer retrained; it and every later one are re-initialised and trained,
    the earlier ones frozen. 'auto': the last convolutional stage and the head after it
    (small_cnn and small_cnn_mlp: 'features.2'; resnet18: 'layer4'; timm: the classifier
    alone). 'head': the layers after the convolutions alone (small_cnn_mlp: 'hidden';
    small_cnn, resnet18: 'fc'; timm: 'classifier'). Other cuts: 'features.1', resnet18's
    'layer3'; cifar10-cpu with small_cnn_mlp: the head alone leaves forget accuracy at
    0.92 (a retrain: 0.62), the conv trunk memorises too (docs/results.md), unless
    ``trunk_noise`` blurs it."""
    epochs: int = param(20, min=1, quick=1, search=Space(5, 40))
    """Passes over the retain set's features (the CPU benchmarks' recipe: 20)."""
    lr: float = param(1e-3, min=0, min_open=True, search=Space(1e-4, 1e-2, log=True))
    """Adam learning rate, cosine-annealed per epoch (the CPU benchmarks' recipe: 1e-3)."""
    weight_decay: float = param(0.0, min=0)
    """Adam's L2 weight decay (the CPU benchmarks' recipe: 0)."""
    batch_size: int = param(64, min=2)
    """Examples per step (the CPU benchmarks' and the competition's recipe: 64)."""
    class_weighted: bool = param(True)
    """Weight the cross-entropy by 1/count of each retain class (the scorer's recipe)."""
    keep: float = param(0.0, min=0, max=1, max_open=True, search=Space(0.0, 0.6))
    """Share of the original weights kept in the retrained layers: w = keep * w_original +
    a fresh draw (Ash & Adams' shrink-and-perturb; the kit's addition: 0 = EU-k as
    published, a fresh start). More kept converges in fewer epochs, and keeps more."""
    distill: float = param(0.0, min=0, search=Space(0.0, 2.0))
    """Weight of a KL term to the original's softened outputs on each retain batch, added
    to the cross-entropy (the kit's addition: 0 = EU-k as published)."""
    distill_temperature: float = param(4.0, min=0, min_open=True)
    """Temperature T of that KL, scaled by T^2 (SCRUB's official kd_T: 4)."""
    dampen_alpha: float = param(0.0, min=0, search=Space(0.0, 30.0))
    """0 = off; else SSD (Foster et al. 2024, the kit's ``ssd``) first dampens every
    weight far more important to the forget set than to all the data, I_f > alpha *
    I_D (the kit's addition; SSD's official ResNet-18 alpha: 10). It reaches into the
    frozen trunk, which EU-k leaves as it is and which memorises too; needs the forget
    set."""
    trunk_noise: float = param(0.0, min=0, search=Space(0.0, 0.5))
    """Std of the seeded Gaussian noise added to every frozen trunk weight, relative to
    that tensor's std (the kit's addition: 0 = EU-k as published). It blurs what the
    trunk memorised and makes the runs differ as retrains do; the retrained layers learn
    on the noisy trunk's features, so they adapt to it."""
    noise_from: str = param("first")
    """The first trunk layer the noise reaches ('first': all of them; else a layer name
    as ``first_layer`` takes, e.g. resnet18's 'layer3'); the layers before it stay as
    trained (the kit's addition)."""
    recalibrate_bn: bool = param(True)
    """After the trunk noise, re-estimate the trunk's BatchNorm statistics on the retain
    set (one more forward pass), so that its features stay normalised (no effect
    without noise)."""
    polish_epochs: int = param(0, min=0, search=Space(0, 2))
    """Passes of fine-tuning the whole network on retain after the head is retrained (0 =
    none; the kit's addition): the noisy trunk adapts, which restores the accuracy the
    noise cost, and cannot bring back what it blurred of the forget set, which it never
    sees."""
    polish_lr: float = param(1e-4, min=0, min_open=True, search=Space(1e-5, 1e-3, log=True))
    """Adam rate of that fine-tuning, cosine-annealed over its steps, with the recipe's
    class-weighted cross-entropy and weight decay (on ResNet-18, SGD at 0.005-0.02, the
    seed variants' repair, cost retain accuracy instead: 0.85 and 0.60, docs/results.md)."""
    polish_forget: float = param(0.0, min=0, search=Space(0.0, 3.0))
    """Weight of a forget-targeted term in the polish (0 = none; the kit's addition):
    each step also lowers the logit-scaled confidence of a batch of forget examples,
    but only where it is above the net's mean confidence on the validation set (unseen
    persons, measured once before the polish), by ``polish_forget x mean(relu(conf -
    that mean))``. The trunk noise lowers every confidence alike and leaves the forget
    examples' lead over unseen data (docs/results.md); this step removes the lead and
    stops there, instead of ascending without bound as NegGrad does. Needs
    ``polish_epochs`` >= 1, the forget set and a validation set. Measured on
    cifar10-groups-resnet18 (0.1 and 1): it lowers the forget persons' classes as a whole
    and scores below doing nothing (docs/results.md), so it is off by default."""
    forget_match: float = param(0.0, min=0, search=Space(0.0, 3.0))
    """Weight of a forget term in the head's training (0 = none; the kit's addition):
    each step also pulls the logit-scaled confidence of every forget example towards
    the value at its rank among the validation examples of its class (unseen persons),
    both measured with the head as it is at the start of each epoch:
    ``forget_match x mean((conf - target)^2)``. It asks the head to treat the forget
    examples as unseen persons of their class, keeping their order, on the trunk's
    features (cheap: no pass through the whole network). Needs the forget set and a
    validation set. Measured on cifar10-groups-resnet18 (docs/results.md): with
    ``first_layer=layer4``, no trunk noise, 10 epochs and weight 0.3 it takes the forget
    persons from memorised to 0.89 forget accuracy with retain and test accuracy as they
    were (0.1056, 52% of the retrain oracle), but at 37% of a retrain; inside the time
    rule (5 epochs) 0.067-0.084, and on ``fc`` alone it lowers the classes as a whole.
    Off by default."""
    match_unseen: bool = param(False)
    """Divide the logits by the temperature that gives the net the original's mean
    confidence on the validation set (the kit's addition). A forget example is unseen
    data to a retrain, and the original's confidence on unseen data is the best estimate
    of a retrain's that the notebook has; retrained layers trained to convergence on a
    converged trunk are more confident than that (docs/results.md)."""
    calibration: float = param(1.0, min=0, min_open=True, search=Space(1.0, 2.0, log=True))
    """A further temperature the logits are divided by (1 = none): where the retrains
    are less confident than the original everywhere (a large forget set: fewer steps)."""
    calibration_jitter: float = param(0.0, min=0, search=Space(0.0, 0.3))
    """Std of log(calibration) across runs, from the seed (0 = the same for every run)."""


Stage = tuple[str, Callable[[torch.Tensor], torch.Tensor]]


def stages(net: nn.Module) -> list[Stage]:
    """``net``'s forward pass as named steps in order (a layer's name where it has one);
    a clear error naming the model when the kit does not know how to cut it."""
    flat = ("flatten", lambda x: torch.flatten(x, 1))
    if isinstance(net, SmallCNN):
        convs = [(f"features.{i}", block) for i, block in enumerate(net.features)]
        if isinstance(net, SmallCNNMLP):
            return [*convs, flat, ("hidden", net.hidden), ("act", net.act), ("fc", net.fc)]
        return [*convs, ("pool", net.pool), flat, ("fc", net.fc)]
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
             "avgpool")
    if all(hasattr(net, n) for n in (*names, "fc")):  # torchvision's ResNet
        return [*((n, getattr(net, n)) for n in names), flat, ("fc", net.fc)]
    if hasattr(net, "forward_head") and hasattr(net, "get_classifier"):  # timm
        return [("forward_features", net.forward_features), ("classifier", net.forward_head)]
    raise ValueError(f"{_NAME} does not know how to cut model {type(net).__name__}: it "
                     f"knows small_cnn, small_cnn_mlp, torchvision's resnet18 and timm models")


@dataclass
class HeadSplit:
    """A network cut in two: ``trunk(x)`` gives the features ``head(f)`` maps to logits;
    ``modules`` are the head's layers (the ones re-initialised and trained)."""

    trunk: Callable[[torch.Tensor], torch.Tensor]
    head: Callable[[torch.Tensor], torch.Tensor]
    modules: list[nn.Module]


def _run(steps: list[Stage], x: torch.Tensor) -> torch.Tensor:
    for _, step in steps:
        x = step(x)
    return x


def split_cut(names: list[str], first_layer: str) -> str:
    """The layer name ``first_layer`` stands for ('auto', 'head' or a name)."""
    if first_layer == "auto":
        return next((n for n in ("layer4", "features.2") if n in names), names[-1])
    if first_layer == "head":
        return next(n for n in ("hidden", "fc", "classifier") if n in names)
    return first_layer


def split_head(net: nn.Module, first_layer: str = "auto") -> HeadSplit:
    """``net`` cut before ``first_layer``; a clear error listing the valid names."""
    steps = stages(net)
    names = [n for n, _ in steps]
    first_layer = split_cut(names, first_layer)
    if first_layer not in names[1:]:
        raise ValueError(f"{_NAME}: first_layer {first_layer!r} is not a layer of model "
                         f"{type(net).__name__} where it can be cut; choose one of: "
                         f"{', '.join(names[1:])} (or 'auto', 'head')")
    cut = names.index(first_layer)
    trunk, head = steps[:cut], steps[cut:]
    if first_layer == "classifier":  # timm: only the classifier is re-initialised
        modules = [net.get_classifier()]
    else:
        modules = [m for _, m in head if isinstance(m, nn.Module)
                   and any(True for _ in m.parameters())]
    return HeadSplit(lambda x: _run(trunk, x), lambda f: _run(head, f), modules)


@torch.no_grad()
def trunk_features(split: HeadSplit, loader, device: torch.device) -> tuple[torch.Tensor,
                                                                            torch.Tensor]:
    """The trunk's features of every example of ``loader`` and their labels."""
    feats, labels = [], []
    for x, y in iter_batches(loader, device):
        feats.append(split.trunk(x))
        labels.append(y)
    if not feats:
        raise ValueError(f"{_NAME}: the retain loader is empty: nothing to retrain the head on")
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def fresh_start(split: HeadSplit, keep: float, seed: int) -> None:
    """Re-initialise the head's layers from ``seed``, then add ``keep`` x their original
    weights (shrink-and-perturb's warm start; ``keep = 0``: a fresh draw, EU-k)."""
    kept = [[p.clone() for p in m.parameters()] for m in split.modules] if keep > 0 else None
    reset_modules_(split.modules, seed)
    for m, old in zip(split.modules, kept or []):
        for p, w in zip(m.parameters(), old):
            p.add_(keep * w)


def noisy_modules(net: nn.Module, noise_from: str, first_layer: str) -> set[int] | None:
    """Ids of the modules of the trunk layers from ``noise_from`` on (None: 'first', the
    whole trunk); a clear error listing the names when it is not a trunk layer."""
    if noise_from == "first":
        return None
    steps = stages(net)
    names = [n for n, _ in steps]
    cut = names.index(split_cut(names, first_layer))
    if noise_from not in names[:cut]:
        raise ValueError(f"{_NAME}: noise_from {noise_from!r} is not a trunk layer of model "
                         f"{type(net).__name__} cut before {names[cut]!r}; choose one of: "
                         f"first, {', '.join(names[:cut])}")
    return {id(m) for _, step in steps[names.index(noise_from):cut]
            if isinstance(step, nn.Module) for m in step.modules()}


@torch.no_grad()
def perturb_trunk(net: nn.Module, split: HeadSplit, scale: float, gen: torch.Generator,
                  only: set[int] | None = None) -> None:
    """Add ``scale`` x std(w) x N(0, 1) to every trunk weight tensor (conv and linear
    weights and biases; BatchNorm's affine parameters and statistics stay), or to those
    of the modules in ``only`` (ids)."""
    retrained = {id(p) for m in split.modules for p in m.parameters()}
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            continue
        if only is not None and id(module) not in only:
            continue
        for p in module.parameters(recurse=False):
            if id(p) in retrained or p.numel() < 2:
                continue
            noise = torch.randn(p.shape, generator=gen, device="cpu").to(p.device, p.dtype)
            p.add_(scale * p.std() * noise)


@torch.no_grad()
def recalibrate_trunk_bn(net: nn.Module, split: HeadSplit, loader, device: torch.device
                         ) -> None:
    """The trunk's BatchNorm running statistics re-estimated over ``loader`` (a
    cumulative average over its batches), the rest of the net untouched."""
    head = {id(m) for top in split.modules for m in top.modules()}
    norms = [m for m in net.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in head]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum, bn.training = None, True
    for x, _ in iter_batches(loader, device):
        split.trunk(x)
    for bn, momentum in zip(norms, momenta):
        bn.momentum, bn.training = momentum, False


def mean_confidence(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The metric's logit-scaled confidence (:func:`logit_scaled_confidence`), averaged."""
    return float(logit_scaled_confidence(logits.detach().double().cpu().numpy(),
                                         labels.cpu().numpy()).mean())


def matching_temperature(logits: torch.Tensor, labels: torch.Tensor, target: float) -> float:
    """The temperature T in [e^-4, e^4] at which ``logits / T`` has mean confidence
    ``target`` (bisection on log T; the confidence falls as T grows); the nearer end
    when no T in the range reaches it."""
    lo, hi = -4.0, 4.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if mean_confidence(logits / math.exp(mid), labels) > target:
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2)


def train_head(split: HeadSplit, feats: torch.Tensor, labels: torch.Tensor,
               weight: torch.Tensor | None, teacher: torch.Tensor | None,
               gen: torch.Generator, cfg: RetrainHeadConfig, match=None) -> None:
    """The recipe on the cached features: Adam, cosine per epoch, CE with class ``weight``,
    plus ``distill`` x KL_T to the original's outputs ``teacher`` when given, plus
    ``forget_match`` x the squared distance of the forget examples' confidences to
    :func:`rank_targets` when ``match`` = ((forget features, labels), (validation
    features, labels)) is given."""
    for m in split.modules:
        m.train()
    opt = adam([p for m in split.modules for p in m.parameters()], lr=cfg.lr,
               weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    index = torch.arange(len(labels), device=labels.device)
    for _ in progress_bar(range(cfg.epochs), cfg.progress, _NAME):
        if match is not None:
            (forget_f, forget_y), (val_f, val_y) = match
            target = rank_targets(split, forget_f, forget_y, val_f, val_y)
        for f, y, i in split_batches(feats, labels, index, batch_size=cfg.batch_size, gen=gen):
            if match is not None:  # a few forget rows ride in the batch (BatchNorm's statistics)
                pick = torch.randperm(len(forget_y), generator=gen)[:max(1, len(y) // 4)]
                logits = split.head(torch.cat([f, forget_f[pick.to(f.device)]]))
                logits, forget_logits = logits[:len(y)], logits[len(y):]
            else:
                logits = split.head(f)
            loss = F.cross_entropy(logits, y, weight=weight)
            if teacher is not None:
                loss = loss + cfg.distill * distill_kl(logits, teacher[i], cfg.distill_temperature)
            if match is not None:
                pick = pick.to(target.device)
                gap = confidence(forget_logits, forget_y[pick]) - target[pick]
                loss = loss + cfg.forget_match * gap.square().mean()
            descend(opt, loss)
        sched.step()


@torch.no_grad()
def rank_targets(split: HeadSplit, forget_f: torch.Tensor, forget_y: torch.Tensor,
                 val_f: torch.Tensor, val_y: torch.Tensor) -> torch.Tensor:
    """Per forget example, the validation confidence of its class at its rank: the
    forget examples of class c, ordered by the head's confidence (in eval mode), are
    given the validation examples of class c's confidences at the same quantiles (their
    own confidence where the validation set has no example of c)."""
    for m in split.modules:
        m.eval()
    forget_conf = confidence(split.head(forget_f), forget_y)
    val_conf = confidence(split.head(val_f), val_y)
    for m in split.modules:
        m.train()
    target = forget_conf.clone()
    for c in forget_y.unique():
        mf, mv = forget_y == c, val_y == c
        if not mv.any():
            continue
        ranks = forget_conf[mf].argsort().argsort().to(val_conf.dtype)
        target[mf] = torch.quantile(val_conf[mv], (ranks + 0.5) / int(mf.sum()))
    return target


def confidence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The metric's logit-scaled confidence, differentiable: ``z_y - logsumexp_{j != y} z_j``
    (= log p_y - log(1 - p_y)) per example, [B]."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf"))
    return true - torch.logsumexp(others, dim=1)


def overconfidence(logits: torch.Tensor, labels: torch.Tensor, target: float) -> torch.Tensor:
    """mean(relu(confidence - target)): zero once no example is above ``target``."""
    return F.relu(confidence(logits, labels) - target).mean()


def polish(net: nn.Module, retain_loader, weight: torch.Tensor | None, gen: torch.Generator,
           cfg: RetrainHeadConfig, forget_loader=None, val_loader=None) -> None:
    """``polish_epochs`` passes of the whole network over retain: Adam at ``polish_lr``,
    cosine over the steps, cross-entropy with class ``weight`` (the recipe's shape), plus
    ``polish_forget`` x :func:`overconfidence` of a forget batch above the net's mean
    validation confidence when that weight is set."""
    device = net_device(net)
    forget = None
    if cfg.polish_forget > 0:
        val_x, val_y = collect(val_loader, device)
        net.eval()
        with torch.no_grad():
            target = mean_confidence(torch.cat([net(x) for x in torch.split(val_x, 512)]),
                                     val_y)
        forget = cycle(forget_loader, device, gen, cfg.batch_size)
    total = cfg.polish_epochs * num_batches(retain_loader)
    opt = adam(net.parameters(), lr=cfg.polish_lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(total))
    net.train()
    for _ in range(cfg.polish_epochs):
        for x, y in shuffled_batches(retain_loader, device, gen):
            loss = F.cross_entropy(net(x), y, weight=weight)
            if forget is not None:
                fx, fy = next(forget)
                loss = loss + cfg.polish_forget * overconfidence(net(fx), fy, target)
            descend(opt, loss, sched)


@register_method(
    "retrain_head",
    config=RetrainHeadConfig,
    scenarios=("sample", "class"),
    summary="EU-k (Goel et al. 2022): re-initialise the last conv stage and the head, "
            "retrain them alone on the frozen trunk's retain features; no forget set",
    needs_forget=False,
)
def retrain_head(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
                 cfg: RetrainHeadConfig) -> nn.Module:
    """Unlearn by retraining the layers from the cut on, from a fresh seeded draw, on the
    frozen trunk's features of the retain set (in place). Uses no forget data."""
    split = split_head(net, cfg.first_layer)  # refuse an unfit model before any work
    noisy = noisy_modules(net, cfg.noise_from, cfg.first_layer)
    if cfg.match_unseen and (val_loader is None or num_batches(val_loader) == 0):
        raise ValueError(f"{_NAME}: match_unseen needs a validation loader with examples (the "
                         "original's confidence on unseen data); pass one, or set "
                         "match_unseen=false")
    if cfg.dampen_alpha > 0 and num_batches(forget_loader) == 0:
        raise ValueError(f"{_NAME}: dampen_alpha > 0 needs forget examples, and the forget "
                         "loader is empty; give the forget set, or set dampen_alpha=0")
    if cfg.polish_forget > 0 and (cfg.polish_epochs == 0 or val_loader is None
                                  or num_batches(val_loader) == 0
                                  or num_batches(forget_loader) == 0):
        raise ValueError(f"{_NAME}: polish_forget > 0 acts in the polish on forget examples "
                         "and measures unseen data on the validation set: set polish_epochs "
                         ">= 1 and pass non-empty forget and validation loaders, or set "
                         "polish_forget=0")
    if cfg.forget_match > 0 and (val_loader is None or num_batches(val_loader) == 0
                                 or num_batches(forget_loader) == 0):
        raise ValueError(f"{_NAME}: forget_match > 0 pulls the forget examples towards the "
                         "validation set's confidences: pass non-empty forget and validation "
                         "loaders, or set forget_match=0")
    if cfg.calibration != 1.0 or cfg.calibration_jitter > 0 or cfg.match_unseen:
        linear_head(net, _NAME)  # the temperature is folded into net.fc: refuse early
    gen = generator(seed)
    net.eval()  # the trunk as trained: BatchNorm on its running statistics
    device = net_device(net)
    if cfg.match_unseen:  # the validation set once; the original's confidence on it
        val_x, val_y = collect(val_loader, device)
        with torch.no_grad():
            target = mean_confidence(net(val_x), val_y)
    if cfg.dampen_alpha > 0:
        ssd(net, retain_loader, forget_loader, None, seed=seed,
            cfg=SSDConfig(alpha=cfg.dampen_alpha, progress=False))
    if cfg.trunk_noise > 0:
        perturb_trunk(net, split, cfg.trunk_noise, generator(seed, _TRUNK_SALT), noisy)
        if cfg.recalibrate_bn:
            recalibrate_trunk_bn(net, split, retain_loader, device)
    feats, labels = trunk_features(split, retain_loader, device)
    with torch.no_grad():  # the original's outputs: the distillation's targets, their width
        rows = feats if cfg.distill > 0 else feats[:1]  # only the width without distillation
        teacher = torch.cat([split.head(f) for f in torch.split(rows, 512)])
    weight = class_weights(labels, teacher.shape[1]).to(labels.device) \
        if cfg.class_weighted else None
    fresh_start(split, cfg.keep, int(torch.randint(0, 2**62, (1,), generator=gen)))
    match = None
    if cfg.forget_match > 0:  # the forget and validation sets' features, on the same trunk
        match = (trunk_features(split, forget_loader, device),
                 trunk_features(split, val_loader, device))
    train_head(split, feats, labels, weight, teacher if cfg.distill > 0 else None, gen, cfg,
               match)
    if cfg.polish_epochs > 0:
        polish(net, retain_loader, weight, generator(seed, _POLISH_SALT), cfg, forget_loader,
               val_loader)
    net.eval()
    temperature = cfg.calibration
    if cfg.match_unseen:  # ours matched to the original's confidence on validation
        with torch.no_grad():
            temperature *= matching_temperature(net(val_x), val_y, target)
    calibrate(net, seed=seed, temperature=temperature, jitter=cfg.calibration_jitter,
              method=_NAME)
    return finish(net)
