"""The competition's input as the official starter hands it to ``unlearning``: dict items.

Tables and image files are found and checked by
:mod:`unlearnkit.data.competition_layout` and decoded by
:func:`unlearnkit.data.images.decode_images`, as on the host. Items are dicts
``{'image': float32 [3, H, W] raw 0-255, 'image_id', 'age_group', 'age', 'person_id'}`` and
loaders are ``DataLoader(ds, batch_size=64, shuffle=True)``, as in the starter notebook.
Images are decoded once into memory (the data, not any result); loaders are made
fresh for every run. :func:`validate_input` checks the whole folder before long work.
The shuffle is a :class:`~unlearnkit.data.device_loader.PermutationSampler`, so that
:func:`device_fields` (the same items as tensors, for the device loaders) gives the same
batches in the same order for one seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from unlearnkit.data.competition_layout import (
    COLUMNS,
    MODEL_FILE,
    SPLITS,
    image_context,
    image_files,
    image_path,
    read_table,
)
from unlearnkit.data.device_loader import PermutationSampler
from unlearnkit.data.images import decode_images
from unlearnkit.data.loaders import loader_seed
from unlearnkit.models import load_checkpoint

from .settings import ENV_INPUT_DIR

__all__ = ["LOADER_BATCH_SIZE", "CompetitionDataset", "check_original", "device_fields",
           "image_path", "load_datasets", "make_loaders", "validate_input"]

LOADER_BATCH_SIZE = 64
"""The batch size of the loaders ``unlearning`` gets (the starter notebook's)."""


def check_original(path: Path) -> None:
    """Raise unless ``path`` holds a state_dict of the competition's resnet18."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} not found: the input folder must hold {MODEL_FILE}")
    try:
        load_checkpoint(path, "resnet18")
    except ValueError:
        raise  # a state_dict of another architecture: load_state's message says which keys
    except Exception as err:  # torch.load: not a checkpoint, truncated, a pickled object
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path} is not a torch checkpoint ({reason}); {MODEL_FILE} must be a "
                         f"state_dict saved with torch.save(net.state_dict(), path)") from None


def validate_input(input_dir: Path, original_path: Path) -> dict:
    """Check every CSV, every image file and the original model; return the tables.

    Each table (a pandas DataFrame) gains an ``image_path`` column.
    """
    try:
        tables = {split: read_table(input_dir, split) for split in SPLITS}
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{err} (attach the competition's data, or set "
                                f"{ENV_INPUT_DIR})") from None
    for split, table in tables.items():
        if len(table) == 0:
            raise ValueError(f"{Path(input_dir) / split}.csv lists no images")
        table["image_path"] = [str(p) for p in image_files(input_dir, table, split)]
    check_original(original_path)
    return tables


def _scalar(value):
    """A CSV cell as a torch scalar when numeric (the collate function stacks them)."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        return torch.tensor(value.item() if hasattr(value, "item") else value)
    return value


class CompetitionDataset(Dataset):
    """One split's items as dicts; all images decoded once, kept as uint8 in memory."""

    def __init__(self, table, progress: bool = True, desc: str = "images",
                 split: str | None = None):
        # [n, 3, H, W] uint8; any one size (the model does not fix it), the same for all
        self.images = decode_images(list(table["image_path"]), progress, desc=desc, size=None,
                                    context=image_context(split, table) if split else None)
        self.rows = table[list(COLUMNS)].to_dict("records")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: int) -> dict:
        return {"image": self.images[idx].to(torch.float32), **_row_fields(self.rows[idx])}


def _row_fields(row: dict) -> dict:
    """One item's fields besides its image, in the contract's key order."""
    return {
        "image_id": str(row["image_id"]),
        "age_group": torch.tensor(int(row["age_group"])),
        "age": _scalar(row["age"]),
        "person_id": _scalar(row["person_id"]),
    }


def device_fields(dataset: CompetitionDataset) -> dict:
    """The split's items as batch fields: uint8 images [n, 3, H, W], every other field
    stacked as ``DataLoader``'s collate stacks it (a tensor, or a list of strings)."""
    rows = [_row_fields(row) for row in dataset.rows]
    fields = {"image": dataset.images}
    for key in ("image_id", "age_group", "age", "person_id"):
        values = [r[key] for r in rows]
        tensors = bool(values) and all(torch.is_tensor(v) for v in values)
        fields[key] = torch.stack(values) if tensors else values
    return fields


def load_datasets(tables: dict, progress: bool = True) -> dict[str, Dataset]:
    """Decode every split's images once: ``{'retain', 'forget', 'validation'}``."""
    return {split: CompetitionDataset(t, progress, desc=split, split=split) for split, t in tables.items()}


def make_loaders(datasets: dict[str, Dataset], seed: int) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Fresh ``DataLoader(ds, batch_size=64)`` for retain, forget, validation, shuffled.

    Each loader shuffles with a :class:`PermutationSampler` seeded by
    :func:`~unlearnkit.data.loaders.loader_seed` (as the harness's and the device loaders
    are), so a run's data order depends on its seed alone, not on what earlier runs
    drew; the loader's own generator (seeding worker processes, of which there are
    none) keeps it off the global RNG.
    """
    retain, forget, val = (
        DataLoader(datasets[split], batch_size=LOADER_BATCH_SIZE,
                   sampler=PermutationSampler(len(datasets[split]), loader_seed(seed, k)),
                   generator=torch.Generator().manual_seed(loader_seed(seed, k)))
        for k, split in enumerate(SPLITS)
    )
    return retain, forget, val
