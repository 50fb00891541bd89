"""Networks by name, and checkpoints that fail loudly when they do not fit.

Every network here has its linear head at ``net.fc`` (methods such as linear
filtration rely on it) and takes float32 images [B, 3, 32, 32] with raw 0-255 values.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_path

NUM_CLASSES = 10
_BUILDERS: dict[str, Callable[[int], nn.Module]] = {}


def register_model(name: str):
    """Decorator: record a builder ``fn(num_classes) -> nn.Module`` under ``name``."""

    def wrap(fn):
        _BUILDERS[name] = fn
        return fn

    return wrap


@register_model("resnet18")
def resnet18(num_classes: int = NUM_CLASSES) -> nn.Module:
    """The competition's network: torchvision resnet18, ImageNet stem, no weights."""
    from torchvision.models import resnet18 as tv_resnet18

    return tv_resnet18(weights=None, num_classes=num_classes)


class SmallCNN(nn.Module):
    """Three conv blocks and a linear head: trains in seconds on a 2-core CPU.

    BatchNorm after the first convolution absorbs the raw 0-255 input scale, as in
    resnet18, so the same unnormalised images feed both networks.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 16):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.features = nn.Sequential(
            block(3, width), block(width, 2 * width), block(2 * width, 4 * width)
        )  # [B, 4w, 4, 4]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


@register_model("small_cnn")
def small_cnn(num_classes: int = NUM_CLASSES) -> nn.Module:
    """The CPU benchmarks' network (width 16: about 24k parameters)."""
    return SmallCNN(num_classes)


class SmallCNNMLP(SmallCNN):
    """The small CNN's conv blocks, then a hidden layer on the flattened 4x4 features.

    The hidden layer gives the capacity to memorise a few thousand CIFAR-10 images in
    20 epochs on a 2-core CPU, which ``small_cnn`` lacks (the accuracies:
    docs/benchmarks.md); that is what makes a forget set's removal visible to the metric,
    as it is for the competition's ResNet-18. The classifier stays at ``net.fc``.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 16, hidden: int = 256):
        super().__init__(num_classes, width)
        del self.pool  # the hidden layer reads every position, not their average
        self.hidden = nn.Linear(4 * width * 4 * 4, hidden)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.hidden(torch.flatten(self.features(x), 1))))


@register_model("small_cnn_mlp")
def small_cnn_mlp(num_classes: int = NUM_CLASSES) -> nn.Module:
    """The competition-style CPU benchmark's network (:class:`SmallCNNMLP`)."""
    return SmallCNNMLP(num_classes)


TIMM_PREFIX = "timm:"
"""``timm:<name>`` builds ``timm.create_model(name, num_classes=K, pretrained=False)``."""


def model_names() -> list[str]:
    """Names accepted by :func:`build_model` (plus any ``timm:<name>``)."""
    return sorted(_BUILDERS)


def build_model(name: str, num_classes: int = NUM_CLASSES) -> nn.Module:
    """A freshly initialised network (seed it with ``torch.manual_seed`` first)."""
    if name.startswith(TIMM_PREFIX):
        return timm_model(name[len(TIMM_PREFIX):], num_classes)
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(model_names())} "
                         f"or timm:<name> for any timm architecture")
    return _BUILDERS[name](num_classes)


def timm_model(arch: str, num_classes: int = NUM_CLASSES) -> nn.Module:
    """A timm architecture, randomly initialised (no weights are downloaded).

    It takes the kit's raw 0-255 images as they are; methods that need a linear head
    at ``net.fc`` (e.g. linear filtration) work with timm models that have one (resnets).
    """
    try:
        import timm
    except ImportError:
        raise ValueError(f"model 'timm:{arch}' needs timm: pip install timm") from None
    names = timm.list_models()
    if arch not in names:
        import difflib

        close = difflib.get_close_matches(arch, names, n=5, cutoff=0.6)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise ValueError(f"unknown timm model {arch!r}{hint} (timm.list_models() lists "
                         f"{len(names)} names)")
    return timm.create_model(arch, num_classes=num_classes, pretrained=False)


def load_state(net: nn.Module, state: dict, *, source: str = "checkpoint") -> nn.Module:
    """Load ``state`` into ``net``, explaining any mismatch of names or shapes."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} shape mismatches (e.g. {k}: {tuple(state[k].shape)} "
                f"in the file, {tuple(own[k].shape)} in the network)"
            )
        raise ValueError(
            f"{source} does not fit a {type(net).__name__}: " + "; ".join(parts)
            + ". Was it saved from another architecture or number of classes?"
        )
    net.load_state_dict(state)
    return net


def load_checkpoint(path: str | os.PathLike, name: str, num_classes: int = NUM_CLASSES,
                    map_location: str | torch.device = "cpu") -> nn.Module:
    """Build ``name`` and load the state_dict saved at ``path`` into it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state_dict")
    return load_state(build_model(name, num_classes), state, source=str(path))


def save_checkpoint(net_or_state: nn.Module | dict, path: str | os.PathLike) -> Path:
    """Save a state_dict on the CPU atomically (temporary file, then rename)."""
    state = net_or_state.state_dict() if isinstance(net_or_state, nn.Module) else net_or_state
    state = {k: v.detach().to("cpu") for k, v in state.items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)
