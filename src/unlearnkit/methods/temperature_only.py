"""A control, not an unlearning method: the original's logits divided by a seeded
random temperature, nothing else.

The competition's metric compares, per forget example, the confidence of N unlearned
models with that of N retrained ones. A memorised example is above all an
over-confident one, so a global temperature moves that statistic without removing
anything the model learnt from the forget set: on digits this control scores about
twice what doing nothing scores (docs/results.md). It is on the leaderboard so that
any method's gain can be told apart from what calibration alone buys: a method that
does not beat ``temperature_only`` at the same temperature has not shown forgetting.
Uses no data; accuracy is unchanged (argmax is scale-free).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..params import Space, param
from . import register_method
from ._common import MethodConfig, finish
from ._tuned import calibrate

NAME = "temperature_only"


@dataclass
class TemperatureOnlyConfig(MethodConfig):
    """The calibration's two numbers (defaults: the best of a small grid on digits'
    cached original-oracle outputs, docs/results.md)."""

    temperature: float = param(1.35, min=0, min_open=True, search=Space(1.0, 2.0, log=True))
    """Median temperature the logits are divided by (exp(0.3); 1 = none)."""
    temperature_jitter: float = param(0.2, min=0, search=Space(0.0, 0.4))
    """Std of log T across runs, from the seed (0 = every run identical, which the
    metric scores 0)."""


@register_method(
    NAME,
    config=TemperatureOnlyConfig,
    summary="CONTROL, no unlearning: the logits divided by a seeded random temperature, "
            "to show what calibration alone scores",
    needs_forget=False,
)
def temperature_only(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
                     cfg: TemperatureOnlyConfig) -> nn.Module:
    """Divide ``net``'s logits by the run's temperature; nothing else."""
    calibrate(net, seed=seed, temperature=cfg.temperature, jitter=cfg.temperature_jitter,
              method=NAME)
    return finish(net)
