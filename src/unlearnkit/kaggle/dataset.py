"""The competition's input as the official starter reads it: CSVs, PNGs, dict items.

Each of ``retain.csv``, ``forget.csv`` and ``validation.csv`` lists ``image_id, age_group,
age, person_id``; image ``"<person>-<n>"`` is ``images/<person>/<n>.png``. Items are dicts
``{'image': float32 [3, H, W] raw 0-255, 'image_id', 'age_group', 'age', 'person_id'}`` and
loaders are ``DataLoader(ds, batch_size=64, shuffle=True)``, as in the starter notebook.
Images are decoded once into memory (the data, not any result); loaders are made
fresh for every run. :func:`validate_input` checks the whole folder before long work.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

COLUMNS = ("image_id", "age_group", "age", "person_id")
BATCH_SIZE = 64


def image_path(input_dir: Path, image_id: str) -> Path:
    """``images/<person>/<n>.png`` for image id ``"<person>-<n>"``."""
    person, sep, n = str(image_id).rpartition("-")
    if not sep or not person or not n:
        raise ValueError(f"image_id {image_id!r} is not of the form '<person>-<n>'")
    return Path(input_dir) / "images" / person / f"{n}.png"


def read_table(input_dir: Path, split: str) -> pd.DataFrame:
    """``<split>.csv`` with its required columns checked and an ``image_path`` column added."""
    path = Path(input_dir) / f"{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the input folder must hold retain.csv, forget.csv and "
            f"validation.csv (attach the competition's data, or set UNLEARNKIT_INPUT_DIR)"
        )
    table = pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; it has {list(table.columns)}")
    if len(table) == 0:
        raise ValueError(f"{path} lists no images")
    table["image_path"] = [str(image_path(input_dir, i)) for i in table["image_id"]]
    return table


def check_images(table: pd.DataFrame, split: str) -> None:
    """Raise ``FileNotFoundError`` naming the missing images of one split, if any."""
    missing = [p for p in table["image_path"] if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} image(s) listed in {split}.csv are missing, e.g. {missing[0]}; "
            f"the input folder is incomplete"
        )


def check_original(path: Path) -> None:
    """Raise unless ``path`` holds a state_dict of ``resnet18(weights=None, num_classes=10)``."""
    from torchvision.models import resnet18

    from unlearnkit.models import load_state

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} not found: the input folder must hold original_model.pth")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state_dict")
    load_state(resnet18(weights=None, num_classes=10), state, source=str(path))


def validate_input(input_dir: Path, original_path: Path) -> dict[str, pd.DataFrame]:
    """Check every CSV, every image file and the original model; return the tables."""
    tables = {split: read_table(input_dir, split) for split in ("retain", "forget", "validation")}
    for split, table in tables.items():
        check_images(table, split)
    check_original(original_path)
    return tables


def _decode(path: str) -> np.ndarray:
    """One PNG as uint8 [3, H, W] RGB."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)


def _scalar(value):
    """A CSV cell as a torch scalar when numeric (the collate function stacks them)."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        return torch.tensor(value.item() if hasattr(value, "item") else value)
    return value


class CompetitionDataset(Dataset):
    """One split's items as dicts; all images decoded once, kept as uint8 in memory."""

    def __init__(self, table: pd.DataFrame, progress: bool = True, desc: str = "images"):
        from tqdm import tqdm

        paths = list(table["image_path"])
        arrays = [_decode(p) for p in tqdm(paths, desc=desc, disable=not progress, leave=False)]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"{desc}: images of different sizes {sorted(shapes)}; "
                             f"the model needs one size")
        self.images = torch.from_numpy(np.stack(arrays))  # [n, 3, H, W] uint8
        self.rows = table[list(COLUMNS)].to_dict("records")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: int) -> dict:
        row = self.rows[idx]
        return {
            "image": self.images[idx].to(torch.float32),  # [3, H, W] raw 0-255
            "image_id": str(row["image_id"]),
            "age_group": torch.tensor(int(row["age_group"])),
            "age": _scalar(row["age"]),
            "person_id": _scalar(row["person_id"]),
        }


def load_datasets(tables: dict[str, pd.DataFrame], progress: bool = True) -> dict[str, Dataset]:
    """Decode every split's images once: ``{'retain', 'forget', 'validation'}``."""
    return {split: CompetitionDataset(t, progress, desc=split) for split, t in tables.items()}


def make_loaders(datasets: dict[str, Dataset], seed: int) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Fresh ``DataLoader(ds, batch_size=64, shuffle=True)`` for retain, forget, validation.

    Each loader gets its own generator seeded from ``seed``, so a run's data order
    depends on its seed alone, not on what earlier runs drew.
    """
    loaders = []
    for k, split in enumerate(("retain", "forget", "validation")):
        gen = torch.Generator().manual_seed(seed * 3 + k)
        loaders.append(DataLoader(datasets[split], batch_size=BATCH_SIZE, shuffle=True,
                                  generator=gen))
    return loaders[0], loaders[1], loaders[2]
