"""EU-k: re-initialise the network's head and retrain it alone on the retain set.

Goel et al. 2022 ("Towards Adversarial Evaluation of Machine Unlearning", arXiv
2201.06640) call it *exact unlearning of the last k layers* (EU-k): the layers before the
last k are frozen, the last k are re-initialised and trained from scratch on the retain
set with the original recipe. The head is then exactly a retrained head on the frozen
trunk's features; only what the trunk memorised of the forget set survives. Where a
network memorises in its head, as ``small_cnn_mlp`` does in its 265k-parameter hidden
layer (the conv trunk has 24k), that is most of it, and every run draws a fresh head,
so the runs differ from each other as retrained models do.

The frozen trunk runs once over the retain set, in eval mode; the head trains on those
features, so a run costs one forward pass plus the training of a small network.
``part`` says which layers count as the head, per architecture (:func:`split_head`):

- ``head``: small_cnn_mlp's hidden layer and classifier; resnet18's ``layer4`` and ``fc``
  (the competition's network: its last residual stage); small_cnn's ``fc``;
- ``classifier``: the last linear layer alone (any of those, and timm models through
  their ``forward_features`` / ``forward_head``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models import SmallCNN, SmallCNNMLP
from ..params import Space, param
from ..train import class_weights
from . import register_method
from ._common import (
    MethodConfig,
    descend,
    finish,
    generator,
    iter_batches,
    net_device,
    progress_bar,
    reset_modules_,
    split_batches,
)

_NAME = "retrain_head"
PARTS = ("head", "classifier")


@dataclass
class RetrainHeadConfig(MethodConfig):
    """Hyperparameters of EU-k (defaults: the recipe of the kit's CPU benchmarks, which
    trained the original, as EU-k retrains with the original's recipe)."""

    part: str = param("head", choices=PARTS)
    """Which layers are re-initialised and retrained: 'head' (small_cnn_mlp: hidden + fc;
    resnet18: layer4 + fc) or 'classifier' (the last linear layer; Goel et al.'s k = 1)."""
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


@dataclass
class HeadSplit:
    """A network cut in two: ``trunk(x)`` gives the features ``head(f)`` maps to logits;
    ``modules`` are the head's layers (the ones re-initialised and trained)."""

    trunk: Callable[[torch.Tensor], torch.Tensor]
    head: Callable[[torch.Tensor], torch.Tensor]
    modules: list[nn.Module]


def split_head(net: nn.Module, part: str) -> HeadSplit:
    """Where ``net`` is cut for ``part``; a clear error naming the model otherwise."""
    flat = torch.flatten
    if isinstance(net, SmallCNNMLP):
        if part == "head":
            return HeadSplit(lambda x: flat(net.features(x), 1),
                             lambda f: net.fc(net.act(net.hidden(f))), [net.hidden, net.fc])
        return HeadSplit(lambda x: net.act(net.hidden(flat(net.features(x), 1))), net.fc,
                         [net.fc])
    if isinstance(net, SmallCNN):  # its head is the classifier
        return HeadSplit(lambda x: flat(net.pool(net.features(x)), 1), net.fc, [net.fc])
    if all(hasattr(net, n) for n in ("conv1", "layer3", "layer4", "avgpool", "fc")):
        def stem_to(x, last):  # torchvision's ResNet forward, up to ``last``
            x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
            for name in ("layer1", "layer2", "layer3", "layer4")[: last]:
                x = getattr(net, name)(x)
            return x
        if part == "head":
            return HeadSplit(lambda x: stem_to(x, 3),
                             lambda f: net.fc(flat(net.avgpool(net.layer4(f)), 1)),
                             [net.layer4, net.fc])
        return HeadSplit(lambda x: flat(net.avgpool(stem_to(x, 4)), 1), net.fc, [net.fc])
    if part == "classifier" and hasattr(net, "forward_head") and hasattr(net, "get_classifier"):
        return HeadSplit(net.forward_features, net.forward_head, [net.get_classifier()])
    raise ValueError(
        f"{_NAME} cannot cut model {type(net).__name__} at part={part!r}: it knows "
        f"small_cnn, small_cnn_mlp and torchvision's resnet18 (part 'head' or "
        f"'classifier') and timm models (part 'classifier' only)")


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


@register_method(
    "retrain_head",
    config=RetrainHeadConfig,
    scenarios=("sample", "class"),
    summary="EU-k (Goel et al. 2022): re-initialise the head, retrain it alone on the "
            "frozen trunk's retain features; no forget set",
    needs_forget=False,
)
def retrain_head(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
                 cfg: RetrainHeadConfig) -> nn.Module:
    """Unlearn by retraining the head from a fresh, seeded initialisation on the frozen
    trunk's features of the retain set (in place). Uses no forget data."""
    split = split_head(net, cfg.part)  # refuse an unfit model before any work
    device = net_device(net)
    gen = generator(seed)
    net.eval()  # the trunk as trained: BatchNorm on its running statistics
    feats, labels = trunk_features(split, retain_loader, device)
    num_classes = int(split.head(feats[:2]).shape[1])

    reset_modules_(split.modules, int(torch.randint(0, 2**62, (1,), generator=gen)))
    params = [p for m in split.modules for p in m.parameters()]
    for m in split.modules:
        m.train()
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    weight = class_weights(labels, num_classes).to(device) if cfg.class_weighted else None
    for _ in progress_bar(range(cfg.epochs), cfg.progress, _NAME):
        for f, y in split_batches(feats, labels, batch_size=cfg.batch_size, gen=gen):
            descend(opt, F.cross_entropy(split.head(f), y, weight=weight))
        sched.step()
    return finish(net)
