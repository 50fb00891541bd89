"""What the per-method test files share: one CPU thread, dict batches, a counting loader.

Imported by ``tests/test_method_*.py`` (importing ``one_thread`` makes it autouse there).
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """One CPU thread: fastest on a shared 2-core machine, and reproducible."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def dict_batches(labels, seed=0, size=8):
    """The competition's dict batches of random 0-255 images with ``labels``."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor(labels)
    return [{"image": torch.rand(len(labels[i:i + size]), 3, 32, 32, generator=g) * 255,
             "age_group": labels[i:i + size]} for i in range(0, len(labels), size)]


class CountingLoader:
    """A list of batches that counts how often it is iterated."""

    def __init__(self, batches):
        self.batches, self.passes = batches, 0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        self.passes += 1
        return iter(self.batches)
