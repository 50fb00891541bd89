"""Bad Teacher tuned for the competition's metric: the published distillation, then
seeded shrink-and-perturb and a retain repair (see ``_tuned``).

Published Bad Teacher (``bad_teacher``, kept as it is) distils every run from the same
original with the same schedule, so its N runs barely differ: the metric tells them
from retrained models by their spread. This variant keeps the distillation and adds
run-to-run variation from the seed, then repairs the accuracy on retain.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from . import register_method
from ._tuned import TunedFields, published_then_tuned
from .bad_teacher import BadTeacherConfig, bad_teacher


@dataclass
class BadTeacherTunedConfig(BadTeacherConfig, TunedFields):
    """Bad Teacher's published hyperparameters plus shrink-and-perturb and a repair."""


NAME = "bad_teacher_tuned"


@register_method(
    NAME,
    config=BadTeacherTunedConfig,
    scenarios=("sample", "class"),
    summary="bad_teacher, then seeded shrink-and-perturb of the weights and a retain repair "
            "(tuned for the metric; not the published setting)",
)
def bad_teacher_tuned(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
                      cfg: BadTeacherTunedConfig) -> nn.Module:
    """Published Bad Teacher, :func:`perturb_and_repair`, then :func:`calibrate`."""
    return published_then_tuned(bad_teacher, NAME, net, retain_loader, forget_loader, val_loader,
                                seed=seed, cfg=cfg)
