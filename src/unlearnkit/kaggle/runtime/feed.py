"""Which loaders the notebook's runs get: device loaders (the default) or the contract's.

``LOADER = "device"`` keeps every split's decoded images (uint8) and fields on the run's
device once and hands each run :class:`~unlearnkit.data.device_loader.DeviceLoader`
objects that batch by indexing there; ``"contract"`` hands it the starter's
``DataLoader`` of dict items (:func:`~unlearnkit.kaggle.runtime.dataset.make_loaders`).
Both draw their orders from the same seeded permutations, so they give the same batches
for one seed. When the data would not fit in the device's memory the device path falls
back to the contract's and says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unlearnkit.data.competition_layout import SPLITS
from unlearnkit.data.device_loader import DeviceLoader, fields_bytes, fits_on_device
from unlearnkit.data.loaders import loader_seed

from .dataset import LOADER_BATCH_SIZE, device_fields, make_loaders

LOADERS = ("device", "contract")


def check_loader(loader) -> None:
    """Raise a one-line ``ValueError`` unless ``loader`` is one of :data:`LOADERS`."""
    if loader not in LOADERS:
        raise ValueError(f"LOADER = {loader!r} is impossible: it must be 'device' (batches "
                         f"indexed on the GPU) or 'contract' (the starter's DataLoader); edit "
                         f"the notebook's first cell")


@dataclass
class Feed:
    """The loaders of every run: ``kind`` says which, ``reason`` why."""

    kind: str
    datasets: dict
    fields: dict | None
    """``{split: fields on the device}`` for the device kind, else ``None``."""
    device: torch.device
    reason: str

    def loaders(self, seed: int) -> tuple:
        """Fresh retain, forget and validation loaders of run ``seed``."""
        if self.kind == "contract":
            return make_loaders(self.datasets, seed)
        return tuple(
            DeviceLoader(self.fields[split], batch_size=LOADER_BATCH_SIZE, shuffle=True,
                         seed=loader_seed(seed, k), device=self.device)
            for k, split in enumerate(SPLITS)
        )


def choose_feed(datasets: dict, device, loader: str = "device",
                free_bytes: int | None = None) -> Feed:
    """The feed ``loader`` asks for, or the contract's when the data would not fit.

    ``free_bytes`` replaces the device's measured free memory (tests).
    """
    check_loader(loader)
    device = torch.device(device)
    if loader == "contract":
        return Feed("contract", datasets, None, device, "LOADER = 'contract': the starter's "
                    "DataLoader of dict items")
    fields = {split: device_fields(d) for split, d in datasets.items()}
    fits, why = fits_on_device(sum(fields_bytes(f) for f in fields.values()), device, free_bytes)
    if not fits:
        return Feed("contract", datasets, None, device,
                    f"falling back to the contract's DataLoader: {why}")
    placed = {split: {k: v.to(device) if torch.is_tensor(v) else v for k, v in f.items()}
              for split, f in fields.items()}
    return Feed("device", datasets, placed, device, f"device loaders: {why}")
