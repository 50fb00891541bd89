"""Image files to uint8 tensors: the one decoder of the kit (CIFAR-10 folders, the
competition's PNGs, on the host and in the notebook alike)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

IMAGE_SIZE = (32, 32)
"""(height, width) of every image the kit's models take."""


def decode_images(files: Sequence[str | os.PathLike], progress: bool = True,
                  desc: str = "decode", size: tuple[int, int] | None = IMAGE_SIZE) -> torch.Tensor:
    """Decode image files into uint8 [n, 3, H, W] RGB.

    ``size`` (height, width) is what every file must be; ``None`` takes the first file's
    size and requires the others to match it (one batch needs one size).
    """
    from PIL import Image

    want = None if size is None else tuple(size)
    out = None
    for i, path in enumerate(tqdm(files, desc=desc, disable=not progress, leave=False)):
        with Image.open(path) as im:
            got = (im.height, im.width)
            want = want or got
            if got != want:
                why = "" if size is not None else " (the first image's: one batch needs one size)"
                raise ValueError(f"{path} is {got[1]}x{got[0]}, expected {want[1]}x{want[0]}{why}")
            if out is None:
                out = np.empty((len(files), *want, 3), np.uint8)  # [n, H, W, C]
            out[i] = np.asarray(im.convert("RGB"))
    if out is None:
        out = np.empty((0, *(want or IMAGE_SIZE), 3), np.uint8)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
