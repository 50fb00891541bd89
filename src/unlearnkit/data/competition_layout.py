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

import math
from pathlib import Path

COLUMNS = ("image_id", "age_group", "age", "person_id")
SPLITS = ("retain", "forget", "validation")
"""The CSVs of the training pool, in the order of ``unlearning(net, retain, forget, val)``."""
MODEL_FILE = "original_model.pth"
NUM_CLASSES = 10
"""``age_group`` is a class 0..9 (the competition's resnet18 has 10 outputs)."""
HEADER_LINES = 1
"""A table's row ``k`` (from 0) is line ``k + 2`` of its CSV: the header is line 1."""


def image_path(folder, image_id: str) -> Path:
    """``images/<person>/<n>.png`` for image id ``"<person>-<n>"``."""
    person, sep, n = str(image_id).rpartition("-")
    if not sep or not person or not n:
        raise ValueError(f"image_id {image_id!r} is not of the form '<person>-<n>'")
    return Path(folder) / "images" / person / f"{n}.png"


def csv_line(k: int) -> int:
    """The line of a CSV holding table row ``k`` (0-based, below the header)."""
    return k + HEADER_LINES + 1


def _integer(value) -> int | None:
    """``value`` as an int when it is a finite whole number (``3``, ``3.0``, ``"3"``), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number != int(number):
        return None
    return int(number)


def check_table(table, path, num_classes: int = NUM_CLASSES) -> None:
    """Raise naming the file, the line and the column of the first bad cell.

    ``image_id`` must be ``"<person>-<n>"``, ``age_group`` an integer class
    0..``num_classes - 1`` and ``person_id`` an integer; NaN (an empty cell) is refused
    in each. ``age`` is handed to the method as it is.
    """
    fix = "fix or remove that row, then run again"
    for k, value in enumerate(table["image_id"]):
        person, sep, n = str(value).rpartition("-")
        if not isinstance(value, str) or not sep or not person or not n:
            shown = "empty" if _missing(value) else repr(value)
            raise ValueError(f"{path} line {csv_line(k)}: image_id is {shown}, expected "
                             f"'<person>-<n>' (the image images/<person>/<n>.png); {fix}")
    for column, what, ok in (
        ("age_group", f"an integer class 0..{num_classes - 1}",
         lambda v: v is not None and 0 <= v < num_classes),
        ("person_id", "an integer person id", lambda v: v is not None),
    ):
        for k, value in enumerate(table[column]):
            if not ok(_integer(value)):
                shown = "empty (NaN)" if _missing(value) else repr(_plain(value))
                raise ValueError(f"{path} line {csv_line(k)} (image_id {table['image_id'].iloc[k]!r}): "
                                 f"{column} is {shown}, expected {what}; {fix}")


def _missing(value) -> bool:
    """True for an empty CSV cell (pandas reads it as NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value):
    """A numpy scalar as a Python one (its repr is what the CSV holds)."""
    return value.item() if hasattr(value, "item") else value


def read_table(folder, split: str, num_classes: int = NUM_CLASSES):
    """``<split>.csv`` as a pandas DataFrame, its columns and cells checked (:func:`check_table`)."""
    import pandas as pd

    path = Path(folder) / f"{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; a competition folder holds "
                                f"{', '.join(s + '.csv' for s in SPLITS)} and images/")
    try:
        table = pd.read_csv(path, dtype={"image_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path} is not a readable CSV ({reason}); a competition CSV has the "
                         f"header {','.join(COLUMNS)} and one row per image") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; a competition CSV needs "
                         f"{list(COLUMNS)} (has {list(table.columns)})")
    check_table(table, path, num_classes)
    return table


def check_tables(tables: dict, folder) -> None:
    """Refuse, naming the CSV and line, what the cells alone cannot show: an image listed
    twice (in one CSV or in two: a retain image also in test), an ``image_id`` whose person
    contradicts its ``person_id``, and a person both in retain and in forget."""
    seen: dict[str, tuple[str, int]] = {}
    for split, table in tables.items():
        for k, (image_id, person) in enumerate(zip(table["image_id"], table["person_id"])):
            here = f"{Path(folder) / split}.csv line {csv_line(k)}"
            if image_id in seen:
                where, line = seen[image_id]
                raise ValueError(f"{here}: image_id {image_id!r} is also listed in {where}.csv "
                                 f"line {line}; an image belongs to one row of one split: "
                                 f"remove one of the two rows, then run again")
            seen[image_id] = (split, csv_line(k))
            owner = _integer(str(image_id).rpartition("-")[0])
            if owner is not None and owner != _integer(person):
                raise ValueError(f"{here}: image_id {image_id!r} names person {owner} but "
                                 f"person_id is {_plain(person)!r}; fix one of the two cells")
    if "retain" in tables and "forget" in tables:
        _check_persons_apart(tables["retain"], tables["forget"], folder)


def _check_persons_apart(retain, forget, folder) -> None:
    """A person is wholly in forget or wholly outside it (as in the competition)."""
    kept: dict = {}
    for k, p in enumerate(retain["person_id"]):
        kept.setdefault(_integer(p), k)
    for k, person in enumerate(forget["person_id"]):
        if _integer(person) in kept:
            j = kept[_integer(person)]
            raise ValueError(f"{Path(folder) / 'forget'}.csv line {csv_line(k)}: person_id "
                             f"{_plain(person)!r} is also in retain.csv line {csv_line(j)}; a "
                             f"person is wholly in forget or wholly in retain: move that "
                             f"person's rows to one of the two, then run again")


def image_files(folder, table, split: str) -> list[Path]:
    """The image file of every row of ``table``; raise naming a missing one, if any."""
    files = [image_path(folder, i) for i in table["image_id"]]
    missing = [k for k, f in enumerate(files) if not f.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{files[missing[0]]} not found (listed in {split}.csv line {csv_line(missing[0])}; "
            f"{len(missing)} image(s) listed in {split}.csv are missing); "
            f"the images/ folder is incomplete or the CSV is wrong"
        )
    return files


def image_context(split: str, table) -> object:
    """For :func:`~unlearnkit.data.images.decode_images`: where row ``k``'s image is listed."""
    ids = list(table["image_id"])

    def where(k: int) -> str:
        return (f"listed in {split}.csv line {csv_line(k)} (image_id {ids[k]!r}): replace it "
                f"with a valid RGB PNG or remove that row, then run again")

    return where
