"""The competition's folder layout: its files, columns and image paths, and how to read them.

Layout (what the notebook finds under ``/kaggle/input/neurips-2023-machine-unlearning``)::

    retain.csv  forget.csv  validation.csv  [test.csv]   columns image_id, age_group, age, person_id
    images/<person>/<n>.png                              RGB 32x32, for image_id "<person>-<n>"
    [original_model.pth]                                 state_dict of the original model

The one reader of that layout: the host's source (:mod:`unlearnkit.data.competition`)
and the notebook's runtime (:mod:`unlearnkit.kaggle.runtime.dataset`) both find and check
tables and images here, and decode them with :func:`unlearnkit.data.images.decode_images`.
Inlined into the notebook, so it imports only what Kaggle's image has.
"""

from __future__ import annotations

from pathlib import Path

COLUMNS = ("image_id", "age_group", "age", "person_id")
SPLITS = ("retain", "forget", "validation")
"""The CSVs of the training pool, in the order of ``unlearning(net, retain, forget, val)``."""
MODEL_FILE = "original_model.pth"


def image_path(folder, image_id: str) -> Path:
    """``images/<person>/<n>.png`` for image id ``"<person>-<n>"``."""
    person, sep, n = str(image_id).rpartition("-")
    if not sep or not person or not n:
        raise ValueError(f"image_id {image_id!r} is not of the form '<person>-<n>'")
    return Path(folder) / "images" / person / f"{n}.png"


def read_table(folder, split: str):
    """``<split>.csv`` as a pandas DataFrame, its required columns checked."""
    import pandas as pd

    path = Path(folder) / f"{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; a competition folder holds "
                                f"{', '.join(s + '.csv' for s in SPLITS)} and images/")
    table = pd.read_csv(path, dtype={"image_id": str})
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; a competition CSV needs "
                         f"{list(COLUMNS)} (has {list(table.columns)})")
    return table


def image_files(folder, table, split: str) -> list[Path]:
    """The image file of every row of ``table``; raise naming a missing one, if any."""
    files = [image_path(folder, i) for i in table["image_id"]]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]} not found ({len(missing)} image(s) listed in {split}.csv are missing); "
            f"the images/ folder is incomplete or the CSV is wrong"
        )
    return files

