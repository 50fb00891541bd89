"""Loaders that batch by indexing tensors kept on one device: dict batches, no per-item Python.

A :class:`DeviceLoader` holds named fields (the images, uint8 or float; per-item labels and
ids) as tensors on its device, draws one permutation per pass from its own CPU generator
and yields dict batches whose image field is float32 (raw 0-255 for the competition's
uint8 images). :class:`PermutationSampler` draws the very same permutations for a torch
``DataLoader``: the competition's per-item path and this one then give the same examples
in the same order for one seed, and a method cannot tell them apart except by speed.

The harness's :class:`~unlearnkit.data.loaders.TensorLoader` and the notebook's device
loaders are both instances of it. :func:`fits_on_device` says whether the tensors would fit
in the device's free memory (the notebook falls back to the ``DataLoader`` when not).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

IMAGE_KEY = "image"
DEVICE_MEMORY_SHARE = 0.5
"""The share of a GPU's free memory the data may take; the rest is the method's."""


def permutation(n: int, generator: torch.Generator) -> torch.Tensor:
    """The next order of ``n`` items from ``generator`` (a CPU ``torch.randperm``)."""
    return torch.randperm(n, generator=generator)


class PermutationSampler(Sampler):
    """A ``DataLoader`` sampler drawing :func:`permutation` from a generator seeded once."""

    def __init__(self, n: int, seed: int):
        self.n = int(n)
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        return iter(permutation(self.n, self.generator).tolist())


class DeviceLoader:
    """Dict batches of ``fields`` gathered on ``device``; a new seeded order every pass.

    ``fields`` maps a batch key to a tensor (first dimension: the items; moved to
    ``device`` once) or a list (e.g. string ids, gathered in Python). Keys keep their
    order. ``shuffle`` draws pass k's order as the k-th :func:`permutation` of a
    generator seeded with ``seed``; without it the order is the items'. The last batch
    may be partial unless ``drop_last``.
    """

    def __init__(self, fields: dict, batch_size: int = 64, shuffle: bool = False,
                 seed: int = 0, device: str | torch.device = "cpu", drop_last: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        sizes = {k: len(v) for k, v in fields.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"every field needs one entry per item; got sizes {sizes}")
        self.device = torch.device(device)
        self.fields = {k: v.to(self.device) if torch.is_tensor(v) else list(v)
                       for k, v in fields.items()}
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(int(seed))
        self._n = next(iter(sizes.values()), 0)

    @property
    def num_examples(self) -> int:
        return self._n

    def __len__(self) -> int:
        n = self._n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        order = permutation(self._n, self.generator) if self.shuffle else torch.arange(self._n)
        on_device = order.to(self.device)
        for b in range(len(self)):
            part = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield self._gather(on_device[part], order[part])

    def _gather(self, idx: torch.Tensor, host_idx: torch.Tensor) -> dict:
        """One batch: tensor fields indexed on the device, list fields in Python."""
        batch, rows = {}, None
        for key, value in self.fields.items():
            if torch.is_tensor(value):
                got = value[idx]
                batch[key] = got.to(torch.float32) if key == IMAGE_KEY else got
            else:
                rows = host_idx.tolist() if rows is None else rows
                batch[key] = [value[i] for i in rows]
        return batch


def fields_bytes(fields: dict) -> int:
    """Bytes the tensor fields take (list fields stay on the host)."""
    return sum(v.numel() * v.element_size() for v in fields.values() if torch.is_tensor(v))


def fits_on_device(nbytes: int, device: str | torch.device,
                   free_bytes: int | None = None) -> tuple[bool, str]:
    """Whether ``nbytes`` of data fit on ``device``, and a line saying why (not).

    On CUDA the data may take :data:`DEVICE_MEMORY_SHARE` of the free memory
    (``torch.cuda.mem_get_info``); the CPU counts as fitting. ``free_bytes`` replaces the
    measured free memory (tests; any device).
    """
    device = torch.device(device)
    if free_bytes is None:
        if device.type != "cuda":
            return True, f"{nbytes / 2**20:.0f} MiB of data kept in {device} memory"
        free_bytes, _ = torch.cuda.mem_get_info(device)
    allowed = int(free_bytes * DEVICE_MEMORY_SHARE)
    mib = f"{nbytes / 2**20:.0f} MiB of data, {free_bytes / 2**20:.0f} MiB free on {device}"
    if nbytes <= allowed:
        return True, f"{mib}: fits"
    return False, (f"{mib}: more than {DEVICE_MEMORY_SHARE:.0%} of the free memory, "
                   f"which the method needs for itself")
