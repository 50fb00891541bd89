"""EU-k tuned to the competition's time rule: keep 70% of the retrained layers' weights,
retrain them 3 epochs instead of the original recipe's 20.

Published EU-k (``retrain_head``, kept as it is) retrains the last conv stage and the head
from scratch with the original recipe: on cifar10-cpu at N = 8 it scores 85% of the
retrain oracle, but its 20 epochs on the cut's features take about 0.8 of a retrain on
this CPU (small_cnn_mlp spends half its work in that stage). Starting the retrained
layers from 0.7 x the original weights plus a fresh draw (shrink-and-perturb) lets 3
epochs restore the retain accuracy: 68% of the retrain oracle at 18% of a retrain on
the same benchmark (docs/results.md has the grid and the command).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..params import Space, param
from . import register_method
from .retrain_head import RetrainHeadConfig, retrain_head


@dataclass
class RetrainHeadTunedConfig(RetrainHeadConfig):
    """EU-k with a warm start and a short schedule (defaults: the kit's grid on cifar10-cpu,
    N = 8: epochs 3-6 x keep 0-0.7 x lr 1e-3/2e-3)."""

    epochs: int = param(3, min=1, quick=1, search=Space(1, 8))
    """Passes over the retain set's features (the kit's grid: 3, inside 20% of a retrain)."""
    keep: float = param(0.7, min=0, max=1, max_open=True, search=Space(0.3, 0.9))
    """Share of the original weights kept in the retrained layers (the kit's grid: 0.7)."""


NAME = "retrain_head_tuned"


@register_method(
    NAME,
    config=RetrainHeadTunedConfig,
    scenarios=("sample", "class"),
    summary="retrain_head from 0.7 x the original weights + a fresh draw, 3 epochs (tuned "
            "for the time rule; not the published setting)",
    needs_forget=False,
)
def retrain_head_tuned(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
                       cfg: RetrainHeadTunedConfig) -> nn.Module:
    """:func:`retrain_head` with the tuned defaults."""
    return retrain_head(net, retain_loader, forget_loader, val_loader, seed=seed, cfg=cfg)
