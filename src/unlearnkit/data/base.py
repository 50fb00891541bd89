"""In-memory image sets: the one shape every data source produces.

Images are float32 [n, 3, 32, 32] with raw 0-255 values (no normalisation, no
augmentation) and labels are int64 0-9, exactly what the competition's model sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

IMAGE_SHAPE = (3, 32, 32)


@dataclass
class ImageSet:
    """Images, labels and optional group (person) ids and string ids, index-aligned."""

    images: torch.Tensor  # [n, 3, 32, 32] float32, 0-255
    labels: torch.Tensor  # [n] int64
    groups: torch.Tensor | None = None  # [n] int64 person ids, or None
    ids: list[str] | None = None  # [n] image ids such as "12-3"

    def __post_init__(self):
        n = len(self.labels)
        if self.images.dtype != torch.float32 or tuple(self.images.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(
                f"images must be float32 [n, 3, 32, 32], got {self.images.dtype} "
                f"{list(self.images.shape)}"
            )
        if self.images.shape[0] != n:
            raise ValueError(f"{self.images.shape[0]} images but {n} labels")
        if self.groups is not None and len(self.groups) != n:
            raise ValueError(f"{len(self.groups)} group ids but {n} labels")
        if self.ids is not None and len(self.ids) != n:
            raise ValueError(f"{len(self.ids)} image ids but {n} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> ImageSet:
        """The items at ``index`` (an integer array), in that order."""
        idx = torch.as_tensor(np.asarray(index, dtype=np.int64))
        return ImageSet(
            images=self.images[idx],
            labels=self.labels[idx],
            groups=None if self.groups is None else self.groups[idx],
            ids=None if self.ids is None else [self.ids[i] for i in idx.tolist()],
        )

    def image_ids(self) -> list[str]:
        """String ids: the stored ones, else ``"<group>-<index>"`` or ``"<index>"``."""
        if self.ids is not None:
            return list(self.ids)
        if self.groups is not None:
            return [f"{g}-{i}" for i, g in enumerate(self.groups.tolist())]
        return [str(i) for i in range(len(self))]


@dataclass
class SourceData:
    """What a data source yields: a training pool, a test set, and class names.

    ``predefined`` holds a fixed split (indices into ``train`` for ``retain``,
    ``forget`` and ``validation``) when the source comes with one, as the
    competition's folder does.
    """

    name: str
    train: ImageSet
    test: ImageSet
    classes: list[str]
    predefined: dict[str, np.ndarray] | None = field(default=None)

    @property
    def num_classes(self) -> int:
        return len(self.classes)
