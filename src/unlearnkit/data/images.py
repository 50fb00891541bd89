"""Image files to uint8 tensors: the one decoder of the kit (CIFAR-10 folders, the
competition's PNGs, on the host and in the notebook alike).

A file that is not an image, is truncated or has the wrong size stops the decoding at
once with a one-line :class:`BadImage` (a ``ValueError``) naming the file, where it was
listed (``context``) and what to do; nothing is cached from a decoding that failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

IMAGE_SIZE = (32, 32)
"""(height, width) of every image the kit's models take."""

DEFAULT_FIX = "replace it with a valid image or delete it, then run again"


class BadImage(ValueError):
    """An image file that cannot be decoded or has the wrong size."""


def _reason(err: BaseException) -> str:
    """The first line of a decoder's error, short."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def decode_images(files: Sequence[str | os.PathLike], progress: bool = True,
                  desc: str = "decode", size: tuple[int, int] | None = IMAGE_SIZE,
                  context: Callable[[int], str] | None = None) -> torch.Tensor:
    """Decode image files into uint8 [n, 3, H, W] RGB.

    ``size`` (height, width) is what every file must be; ``None`` takes the first file's
    size and requires the others to match it (one batch needs one size).
    ``context(i)`` says where file ``i`` comes from and what to do about a bad one
    (e.g. ``"listed in retain.csv line 15: ..."``); without it the error says to
    replace or delete the file.
    """
    from PIL import Image

    want = None if size is None else tuple(size)
    out = None
    for i, path in enumerate(tqdm(files, desc=desc, disable=not progress, leave=False)):
        try:
            with Image.open(path) as im:
                got = (im.height, im.width)
                pixels = np.asarray(im.convert("RGB"))  # decodes the whole file
        except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... for bad files
            where = context(i) if context else DEFAULT_FIX
            raise BadImage(f"{path} is not a readable image ({_reason(err)}); {where}") from None
        want = want or got
        if got != want:
            why = "" if size is not None else " (the first image's: one batch needs one size)"
            where = context(i) if context else DEFAULT_FIX
            raise BadImage(f"{path} is {got[1]}x{got[0]}, expected {want[1]}x{want[0]}{why}; "
                           f"{where}")
        if out is None:
            out = np.empty((len(files), *want, 3), np.uint8)  # [n, H, W, C]
        out[i] = pixels
    if out is None:
        out = np.empty((0, *(want or IMAGE_SIZE), 3), np.uint8)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
