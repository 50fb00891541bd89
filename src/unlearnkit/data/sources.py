"""The source registry: a name, some options, and out comes a :class:`SourceData`.

Sources are ``digits`` (scikit-learn's bundled digits: the default, no download),
``cifar10`` (torchvision's pickle layout or an image folder under the data root) and
``competition`` (a folder in the Kaggle competition's layout). Each lives in its own
module, imported only when asked for, so that reading digits never imports PIL.

This module also holds the two things the image sources share: where data lives
(:func:`data_root`) and how groups are made for sources without persons
(:func:`expand_views`).
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path

import numpy as np
import torch

from .base import SourceData

DATA_ENV = "UNLEARNKIT_DATA"
"""Environment variable naming the data root when no ``root`` is passed."""

_SOURCES: dict[str, tuple[str, str]] = {
    "digits": ("unlearnkit.data.digits", "load_digits"),
    "cifar10": ("unlearnkit.data.cifar10", "load_cifar10"),
    "competition": ("unlearnkit.data.competition", "read_competition"),
}


def source_names() -> list[str]:
    """Names accepted by :func:`get_source`."""
    return sorted(_SOURCES)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$UNLEARNKIT_DATA``, else ``./data``.

    Nothing is checked here: each source says what it expected to find and where.
    """
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.cwd() / "data"


def get_source(name: str, root: str | os.PathLike | None = None, *,
               progress: bool | None = None, imbalance: float | None = None,
               imbalance_seed: int = 0, **options) -> SourceData:
    """Load source ``name`` (see :func:`source_names`) with its ``options``.

    ``root`` is handed to the source (digits ignores it); so is ``progress`` (bars while
    decoding) when set and the source shows any. ``imbalance`` (any source with groups)
    then keeps a share ``imbalance ** c`` of class ``c``'s persons, drawn with
    ``imbalance_seed`` (:func:`unlearnkit.data.persons.imbalanced`). Unknown options raise
    a ``ValueError`` that lists the valid ones.
    """
    if name not in _SOURCES:
        raise ValueError(f"unknown data source {name!r}; choose one of: {', '.join(source_names())}")
    module, attr = _SOURCES[name]
    loader = getattr(importlib.import_module(module), attr)
    valid = [p for p in inspect.signature(loader).parameters if p != "root"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for source {name!r}; valid: "
                         f"{valid + ['imbalance', 'imbalance_seed']}")
    if progress is not None and "progress" in valid:
        options = {**options, "progress": progress}
    data = loader(root=root, **options)
    if imbalance is None:
        return data
    from .persons import imbalanced

    return imbalanced(data, imbalance, imbalance_seed)


def _mix(index: np.ndarray, view: int, salt: int) -> np.ndarray:
    """A well-spread uint64 hash of (index, view, salt): deterministic per item."""
    with np.errstate(over="ignore"):
        h = index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        h ^= np.uint64((view * 0x632BE59BD9B4E019 + salt * 0x85EBCA77C2B2AE63) % 2**64)
        h ^= h >> np.uint64(31)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(29)
    return h


def moved_copies(images: torch.Tensor, dx: np.ndarray, dy: np.ndarray,
                 flips: np.ndarray) -> torch.Tensor:
    """Image i moved by (dx[i], dy[i]) pixels (zeros fill the gap), mirrored when flips[i].

    One gather from a zero-padded copy: out[i, c, y, x] = images[i, c, y - dy, x - dx].
    """
    n, _, h, w = images.shape
    m = int(max(np.abs(dx).max(initial=0), np.abs(dy).max(initial=0)))
    padded = torch.nn.functional.pad(images, (m, m, m, m))  # [n, C, H+2m, W+2m]
    xs = np.where(flips[:, None], np.arange(w)[::-1], np.arange(w))  # [n, W] source column
    rows = torch.as_tensor(m - dy[:, None] + np.arange(h))  # [n, H]
    cols = torch.as_tensor(m - dx[:, None] + xs)  # [n, W]
    idx = torch.arange(n)[:, None, None, None]
    chan = torch.arange(images.shape[1])[None, :, None, None]
    return padded[idx, chan, rows[:, None, :, None], cols[:, None, None, :]]  # [n, C, H, W]


def view_params(index: np.ndarray, view: int, max_shift: int, flip: bool):
    """Shift (dx, dy) and flip flag of view ``view`` of each base image in ``index``.

    View 0 is the image itself; every other view is shifted by a nonzero offset of at
    most ``max_shift`` pixels per axis (and mirrored left-right half the time when
    ``flip``), chosen by a hash of (index, view) so it does not depend on the subset.
    """
    n = len(index)
    if view == 0 or max_shift < 1:
        zeros = np.zeros(n, np.int64)
        return zeros, zeros, np.zeros(n, bool)
    side = 2 * max_shift + 1
    h = _mix(index, view, 0)
    k = (h % np.uint64(side * side - 1)).astype(np.int64)
    k = k + (k >= (side * side) // 2)  # skip the centre cell, offset (0, 0)
    dx, dy = k % side - max_shift, k // side - max_shift
    flips = ((h >> np.uint64(40)) & np.uint64(1)).astype(bool) & flip
    return dx, dy, flips


def expand_views(images: torch.Tensor, views: int, *, max_shift: int = 2, flip: bool = False,
                 base_index: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``views`` slightly moved copies of each image; returns (images, base index).

    This is how sources without persons get groups: the copies of one base image play
    the frames of one person. Output is base-major (item ``i * views + v`` is view ``v``
    of base ``i``): images [n * views, C, H, W] and the base index [n * views] int64.
    ``base_index`` (default ``arange(n)``) seeds each image's shifts.
    """
    if not isinstance(views, int) or views < 1:
        raise ValueError(f"views must be an integer >= 1, got {views!r}")
    n = images.shape[0]
    owner = torch.arange(n, dtype=torch.int64).repeat_interleave(views)  # [n * V]
    if views == 1:
        return images, owner
    base = np.arange(n) if base_index is None else np.asarray(base_index, np.int64)
    out = images.new_empty((n, views) + tuple(images.shape[1:]))  # [n, V, C, H, W]
    out[:, 0] = images
    for v in range(1, views):
        out[:, v] = moved_copies(images, *view_params(base, v, max_shift, flip))
    return out.reshape((n * views,) + tuple(images.shape[1:])), owner
