"""Loaders that yield the competition's dict batches, from tensors kept in memory.

A batch is ``{'image': [B,3,32,32] float32 0-255, 'age_group': [B] int64 label,
'person_id': [B] int64, 'image_id': list[str]}``: the same keys the Kaggle notebook's
``DataLoader`` yields, so a method sees the same kind of loader here and there. The
tensors can live on the GPU (no worker processes, no per-item Python): small datasets
then cost nothing to iterate.
"""

from __future__ import annotations

import torch

from .base import ImageSet
from .device_loader import DeviceLoader


class TensorLoader(DeviceLoader):
    """Iterate an :class:`ImageSet` in dict batches; reshuffled every pass when asked.

    A :class:`~unlearnkit.data.device_loader.DeviceLoader` over the set's images, labels,
    groups and ids: ``seed`` fixes the sequence of orders (pass k uses the k-th draw of a
    generator seeded once), so two loaders with one seed yield the same batches.
    """

    def __init__(self, data: ImageSet, batch_size: int = 64, shuffle: bool = False,
                 seed: int = 0, device: str | torch.device = "cpu", drop_last: bool = False):
        groups = data.groups if data.groups is not None else torch.full((len(data),), -1)
        fields = {"image": data.images, "age_group": data.labels, "person_id": groups,
                  "image_id": data.image_ids()}
        super().__init__(fields, batch_size=batch_size, shuffle=shuffle, seed=seed,
                         device=device, drop_last=drop_last)
        self.data = data

    @property
    def images(self) -> torch.Tensor:
        return self.fields["image"]

    @property
    def labels(self) -> torch.Tensor:
        return self.fields["age_group"]

    @property
    def groups(self) -> torch.Tensor:
        return self.fields["person_id"]

    @property
    def ids(self) -> list[str]:
        return self.fields["image_id"]


def loader_seed(run_seed: int, part: int) -> int:
    """The shuffle seed of one loader of run ``run_seed``: ``part`` 0, 1, 2 for its retain,
    forget and validation loader.

    Distinct for every run and part, so a run's data order depends on its seed alone;
    the harness's loaders and the notebook's use it alike.
    """
    if part not in (0, 1, 2):
        raise ValueError(f"part must be 0 (retain), 1 (forget) or 2 (validation), got {part}")
    return run_seed * 3 + part


def make_loader(data: ImageSet, batch_size: int = 64, shuffle: bool = False, seed: int = 0,
                device: str | torch.device = "cpu") -> TensorLoader:
    """The kit's standard loader (see :class:`TensorLoader`)."""
    return TensorLoader(data, batch_size=batch_size, shuffle=shuffle, seed=seed, device=device)


def unpack(batch, device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)`` from a dict batch or an ``(x, y, ...)`` tuple, on ``device``.

    Methods call this so that they accept both the competition's dict batches and
    plain tuples.
    """
    if isinstance(batch, dict):
        try:
            x, y = batch["image"], batch["age_group"]
        except KeyError as err:
            raise KeyError(
                f"a dict batch needs keys 'image' and 'age_group'; got {sorted(batch)}"
            ) from err
    elif isinstance(batch, (tuple, list)) and len(batch) >= 2:
        x, y = batch[0], batch[1]
    else:
        raise TypeError(f"a batch must be a dict or an (x, y) tuple, got {type(batch).__name__}")
    if device is not None:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    return x.float(), y.long()
