"""The CPU speed-ups the harness gives every network it trains or unlearns on the CPU,
in one place, so that a method and the retrains it is timed against run on the same
footing: one-pixel convolutions (:mod:`unlearnkit.one_pixel_conv`) and an allocator that
keeps freed memory (:mod:`unlearnkit.allocator`). Adam's part is
:func:`unlearnkit.fused_adam.adam`, which every network-wide optimiser already uses."""

from __future__ import annotations

import torch
from torch import nn

from .allocator import keep_freed_memory
from .one_pixel_conv import use_one_pixel_convs


def on_cpu(net: nn.Module, device: torch.device | str) -> nn.Module:
    """``net`` with one-pixel convolutions, and this process's allocator keeping freed
    memory, when ``device`` is the CPU; ``net`` as it is elsewhere."""
    if torch.device(device).type == "cpu":
        use_one_pixel_convs(net)
        keep_freed_memory()
    return net
