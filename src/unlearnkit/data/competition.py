"""The Kaggle competition's folder layout: read it as a source, write any source into it.

The layout itself (files, columns, image paths) and its reading are
:mod:`unlearnkit.data.competition_layout`, shared with the notebook's runtime.

Reading: the training pool is retain + forget + validation, in that order, and
``predefined`` holds the three index ranges (scenario ``given``); ``test.csv`` is the
test set when present (an empty set otherwise). Labels are ``age_group``, groups
``person_id``, ids ``image_id``.

Writing (:func:`export_competition`): a source and a split become that layout, e.g. the
mock inputs of the Kaggle notebook. Images are rounded to uint8 PNG (lossless); every
source yields integer-valued pixels, so reading back gives identical tensors. ``age``
is filled with the label (a placeholder: only ``age_group`` is ever used), person ids
are the source's groups (the item's index when it has none). The folder is built
beside its destination and renamed into place, so nothing half-written is left.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .base import ImageSet, SourceData
from .competition_layout import (
    MODEL_FILE,
    NUM_CLASSES,
    SPLITS,
    check_tables,
    image_context,
    image_files,
    image_path,
    read_table,
)
from .images import decode_images
from .sources import data_root

SUBFOLDERS = ("", "competition", "neurips-2023-machine-unlearning")
CLASSES_FILE = "classes.json"


def find_competition(root: str | os.PathLike | None = None) -> Path:
    """The competition folder: the data root or its ``competition/`` (or Kaggle-named) subfolder."""
    base = data_root(root)
    for sub in SUBFOLDERS:
        cand = base / sub if sub else base
        if (cand / "retain.csv").is_file():
            return cand
    raise FileNotFoundError(
        f"no competition folder (retain.csv, forget.csv, validation.csv, images/) under {base} "
        f"or its {', '.join(s for s in SUBFOLDERS if s)}/ subfolders; pass root= or set "
        "UNLEARNKIT_DATA to it, or write a mock one with export_competition"
    )


def original_model_path(root: str | os.PathLike | None = None) -> Path | None:
    """The folder's ``original_model.pth``, or None when it has none."""
    path = find_competition(root) / MODEL_FILE
    return path if path.is_file() else None


def read_part(folder: Path, name: str, progress: bool, table=None) -> ImageSet:
    """The images of ``<name>.csv`` as an ImageSet (RGB 32x32)."""
    table = read_table(folder, name, folder_num_classes(folder)) if table is None else table
    images = decode_images(image_files(folder, table, name), progress, desc=f"read {name}",
                           context=image_context(name, table))
    return ImageSet(
        images=images.float(),
        labels=torch.from_numpy(np.array(table["age_group"], dtype=np.int64)),
        groups=torch.from_numpy(np.array(table["person_id"], dtype=np.int64)),
        ids=table["image_id"].astype(str).tolist(),
    )


def concat(sets: list[ImageSet]) -> ImageSet:
    """One ImageSet holding ``sets`` one after another."""
    return ImageSet(images=torch.cat([s.images for s in sets]),
                    labels=torch.cat([s.labels for s in sets]),
                    groups=torch.cat([s.groups for s in sets]),
                    ids=[i for s in sets for i in s.ids])


def empty_set() -> ImageSet:
    """An ImageSet with no items (the test set of a folder without test.csv)."""
    return ImageSet(images=torch.zeros((0, 3, 32, 32)), labels=torch.zeros(0, dtype=torch.int64),
                    groups=torch.zeros(0, dtype=torch.int64), ids=[])


def read_competition(root=None, progress: bool = True) -> SourceData:
    """The competition folder as a source (see the module docstring)."""
    folder = find_competition(root)
    names = SPLITS + (("test",) if (folder / "test.csv").is_file() else ())
    num_classes = folder_num_classes(folder)
    tables = {name: read_table(folder, name, num_classes) for name in names}  # every CSV first
    check_tables(tables, folder)  # no image twice, ids agree, no person in retain and forget
    for name in names:
        image_files(folder, tables[name], name)  # every listed file exists, before decoding any
    parts = [read_part(folder, name, progress, tables[name]) for name in SPLITS]
    bounds = np.cumsum([0] + [len(p) for p in parts])
    predefined = {name: np.arange(bounds[i], bounds[i + 1]) for i, name in enumerate(SPLITS)}
    test = read_part(folder, "test", progress, tables["test"]) if "test" in tables else empty_set()
    train = concat(parts)
    return SourceData(name="competition", train=train, test=test,
                      classes=_classes(folder, train, test), predefined=predefined)


def folder_num_classes(folder: Path) -> int:
    """How many classes ``age_group`` may take: ``classes.json``'s, else the competition's 10."""
    if (folder / CLASSES_FILE).is_file():
        try:
            return max(1, len(json.loads((folder / CLASSES_FILE).read_text())))
        except (ValueError, TypeError):
            raise ValueError(f"{folder / CLASSES_FILE} is not a JSON list of class names; "
                             f"delete it (the classes are then 0..9) or write it again") from None
    return NUM_CLASSES


def _classes(folder: Path, train: ImageSet, test: ImageSet) -> list[str]:
    """Class names from ``classes.json`` when written by the exporter, else "0".."9"."""
    if (folder / CLASSES_FILE).is_file():
        return list(json.loads((folder / CLASSES_FILE).read_text()))
    top = int(torch.cat([train.labels, test.labels]).max()) + 1 if len(train) else 0
    return [str(c) for c in range(max(10, top))]


def export_ids(parts: dict[str, ImageSet], persons: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Image ids "<person>-<n>": the source's own when they already have that form and
    are distinct, else numbered per person in order of appearance."""
    names = list(parts)
    own = [parts[k].ids for k in names]
    if all(ids is not None for ids in own):
        flat = [i for ids in own for i in ids]
        owners = [str(p) for k in names for p in persons[k].tolist()]
        if len(set(flat)) == len(flat) and all(i.rpartition("-")[0] == p for i, p in zip(flat, owners)):
            return {k: list(parts[k].ids) for k in names}
    count: dict[int, int] = {}
    out = {}
    for k in names:
        out[k] = []
        for p in persons[k].tolist():
            out[k].append(f"{p}-{count.get(p, 0)}")
            count[p] = count.get(p, 0) + 1
    return out


def _write_part(folder: Path, name: str, data: ImageSet, ids: list[str], persons: np.ndarray,
                progress: bool) -> None:
    """Write one CSV and its PNG images into ``folder``."""
    import pandas as pd
    from PIL import Image

    pixels = data.images.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # [n,H,W,C]
    for i, image_id in enumerate(tqdm(ids, desc=f"write {name}", disable=not progress, leave=False)):
        file = image_path(folder, image_id)
        file.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[i]).save(file)  # uint8 [H, W, 3] -> RGB
    labels = data.labels.numpy()
    pd.DataFrame({"image_id": ids, "age_group": labels, "age": labels,
                  "person_id": persons}).to_csv(folder / f"{name}.csv", index=False)


def export_competition(source_data: SourceData, split, out_dir: str | os.PathLike, *,
                       original_state=None, overwrite: bool = False,
                       progress: bool = True) -> Path:
    """Write ``source_data`` cut by ``split`` into the competition layout at ``out_dir``.

    ``split`` is a :class:`~unlearnkit.data.splits.Split`; its test part becomes
    ``test.csv`` (left out when empty). ``original_state`` (a state_dict or a network)
    becomes ``original_model.pth``. An existing ``out_dir`` raises unless ``overwrite``.
    """
    from ..models import save_checkpoint

    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass overwrite=True or choose another folder")
    split.check(source_data)
    parts = {k: v for k, v in split.parts(source_data).items() if k != "test" or len(v)}
    persons = {k: _persons(source_data, split, k, v) for k, v in parts.items()}
    ids = export_ids(parts, persons)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        for name, data in parts.items():
            _write_part(tmp, name, data, ids[name], persons[name], progress)
        (tmp / CLASSES_FILE).write_text(json.dumps(source_data.classes) + "\n")
        if original_state is not None:
            save_checkpoint(original_state, tmp / MODEL_FILE)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _persons(source: SourceData, split, name: str, data: ImageSet) -> np.ndarray:
    """Person ids of one part: its groups, else the items' pool (or test) indices."""
    if data.groups is not None:
        return data.groups.numpy().astype(np.int64)
    index = getattr(split, name)
    return index + (len(source.train) if name == "test" else 0)


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` onto ``out``, moving an old ``out`` aside first and deleting it after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
