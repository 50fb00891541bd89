"""CIFAR-10 from the data root: torchvision's pickle layout or an image folder.

Where it looks, under ``data_root(root)`` (the ``root`` argument, else
``$UNLEARNKIT_DATA``, else ``./data``), the root itself and its subfolders
``cifar10-jpeg/``, ``cifar10/`` and ``cifar-10/``, each for either

- ``cifar-10-batches-py/`` (torchvision's download; read directly, no md5 check), or
- ``train/<class>/*`` and ``test/<class>/*`` image files (classes in alphabetical
  order, which is CIFAR-10's standard label order; RGB, 32x32).

When neither is found and ``download`` is true, torchvision downloads the pickle
layout into the data root; offline, the error says where to put the files.

Decoding 60,000 JPEGs takes a while on two cores, so decoded images are cached as
uint8 tensors in a ``.pt`` file (written atomically) under ``cache_dir`` (default
``./data/cache``: the data root itself may be a shared read-only copy), keyed by the
folder's path, the split, the subset and the list of file names.

Groups: as for digits (:func:`unlearnkit.data.sources.expand_views`), but CIFAR keeps
its own train/test split: the views of a train image stay in train, those of a test
image in test. ``views=1`` (the default) gives one group per image; test groups are
numbered after the train groups. ``held_out_views=K`` gives each train image K more
views that go to the test set instead, as the competition's test set held other frames
of its training persons (its scorer's network reached 96% test accuracy for that
reason); ``test_per_class=0`` then leaves CIFAR's own test images out.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from .base import ImageSet, SourceData
from .images import decode_images
from .sources import data_root, expand_views

SUBFOLDERS = ("", "cifar10-jpeg", "cifar10", "cifar-10")
PICKLE_DIR = "cifar-10-batches-py"
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp"}
_PICKLE_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def find_cifar10(root: str | os.PathLike | None = None) -> tuple[str, Path] | None:
    """``("pickle" | "folder", path)`` of the CIFAR-10 copy under the data root, or None."""
    base = data_root(root)
    if base.name == PICKLE_DIR and (base / "data_batch_1").is_file():
        return "pickle", base
    for sub in SUBFOLDERS:
        cand = base / sub if sub else base
        if (cand / PICKLE_DIR / "data_batch_1").is_file():
            return "pickle", cand / PICKLE_DIR
        if (cand / "train").is_dir() and (cand / "test").is_dir():
            return "folder", cand
    return None


def _missing_message(base: Path) -> str:
    """What to do when no CIFAR-10 copy is found under ``base``."""
    return (
        f"no CIFAR-10 found under {base} (looked for {PICKLE_DIR}/ or train/ + test/ image "
        f"folders there and in {', '.join(s for s in SUBFOLDERS if s)}/). Set UNLEARNKIT_DATA "
        f"or pass root= to a folder holding one of them, or allow download=True to fetch it "
        f"with torchvision (needs internet); see data/README.md"
    )


def download_cifar10(root: str | os.PathLike | None = None) -> tuple[str, Path]:
    """Fetch torchvision's CIFAR-10 into the data root; a clear error when offline."""
    base = data_root(root)
    try:
        from torchvision.datasets import CIFAR10

        base.mkdir(parents=True, exist_ok=True)
        CIFAR10(str(base), train=True, download=True)
    except Exception as err:  # offline, proxy, disk: all end the same way for the user
        raise FileNotFoundError(f"downloading CIFAR-10 failed ({err}); " + _missing_message(base)) from err
    return "pickle", base / PICKLE_DIR


def first_per_class(labels: np.ndarray, per_class: int | None, offset: int = 0) -> np.ndarray:
    """Sorted indices of ``per_class`` items of each label after its first ``offset`` (all
    the rest when None)."""
    if per_class is None and not offset:
        return np.arange(len(labels))
    if per_class is not None and per_class < 1:
        raise ValueError(f"per-class subset size must be >= 1 or None, got {per_class}")
    end = None if per_class is None else offset + per_class
    keep = [np.flatnonzero(labels == c)[offset:end] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def read_pickle(folder: Path, split: str, per_class: int | None, offset: int = 0):
    """Images uint8 [n, 3, 32, 32], labels [n] and class names from the pickle layout."""
    data, labels = [], []
    for name in _PICKLE_FILES[split]:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the {PICKLE_DIR} folder is incomplete; "
                                    "download it again or point UNLEARNKIT_DATA elsewhere")
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[b"labels"], np.int64))
    with open(folder / "batches.meta", "rb") as f:
        classes = [c.decode() for c in pickle.load(f, encoding="bytes")[b"label_names"]]
    images, labels = np.concatenate(data), np.concatenate(labels)
    keep = first_per_class(labels, per_class, offset)
    return torch.from_numpy(images[keep]), torch.from_numpy(labels[keep]), classes


def list_folder(folder: Path, split: str, per_class: int | None, offset: int = 0):
    """Class names, image files (``per_class`` by name per class, after the first
    ``offset``) and labels."""
    top = folder / split
    classes = sorted(d.name for d in top.iterdir() if d.is_dir())
    if not classes:
        raise FileNotFoundError(f"{top} has no class folders; expected {split}/<class>/<image>")
    files, labels = [], []
    for label, name in enumerate(classes):
        names = sorted(p for p in os.listdir(top / name)
                       if os.path.splitext(p)[1].lower() in IMAGE_EXTS)
        names = names[offset:] if per_class is None else names[offset:offset + per_class]
        files += [os.path.join(top, name, p) for p in names]
        labels += [label] * len(names)
    return classes, files, np.asarray(labels, np.int64)


def _bad_file_fix(folder: Path, split: str) -> str:
    """What to do about an unreadable file of a CIFAR-10 image folder."""
    return (f"in the CIFAR-10 image folder {folder / split}: restore it from the original "
            f"archive, or delete it (that image is then left out), then run again")


def cache_file(cache_dir: Path, folder: Path, split: str, per_class: int | None,
               files: list[str]) -> Path:
    """The cache path for one decoded split, keyed by folder, subset and file list (which
    an offset changes)."""
    key = json.dumps([str(folder.resolve()), split, per_class, files])
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return cache_dir / "cifar10" / f"{split}-{per_class or 'all'}-{digest}.pt"


def read_folder(folder: Path, split: str, per_class: int | None, *, cache: bool,
                cache_dir: Path, progress: bool, offset: int = 0):
    """Images uint8, labels and classes from an image folder, through the cache."""
    classes, files, labels = list_folder(folder, split, per_class, offset)
    path = cache_file(cache_dir, folder, split, per_class, files)
    if cache and path.is_file():
        saved = torch.load(path, weights_only=True)
        return saved["images"], saved["labels"], saved["classes"]
    images = decode_images(files, progress, desc=f"decode CIFAR-10 {split}",
                           context=lambda i: _bad_file_fix(folder, split))
    labels = torch.from_numpy(labels)
    if cache:
        with atomic_path(path) as tmp:
            torch.save({"images": images, "labels": labels, "classes": classes}, tmp)
    return images, labels, classes


def to_image_set(images: torch.Tensor, labels: torch.Tensor, views: int, max_shift: int,
                 flip: bool, first_group: int) -> ImageSet:
    """uint8 images -> float32 ImageSet with ``views`` views per image as one group."""
    base = first_group + np.arange(len(labels))
    x, owner = expand_views(images.float(), views, max_shift=max_shift, flip=flip, base_index=base)
    groups = owner + first_group
    view = torch.arange(len(owner)) % views
    ids = [f"{g}-{v}" for g, v in zip(groups.tolist(), view.tolist())]
    return ImageSet(images=x, labels=labels[owner].long(), groups=groups, ids=ids)


def split_views(data: ImageSet, views: int, held_out: int) -> tuple[ImageSet, ImageSet]:
    """(the first ``views`` views of each group, the last ``held_out`` ones)."""
    view = np.arange(len(data)) % (views + held_out)
    return data.subset(np.flatnonzero(view < views)), data.subset(np.flatnonzero(view >= views))


def concat(a: ImageSet, b: ImageSet) -> ImageSet:
    """``a`` then ``b`` (both with groups and ids)."""
    return ImageSet(images=torch.cat([a.images, b.images]), labels=torch.cat([a.labels, b.labels]),
                    groups=torch.cat([a.groups, b.groups]), ids=list(a.ids) + list(b.ids))


def _check_sizes(train_per_class, test_per_class, held_out_views, train_offset) -> None:
    """Refuse subset sizes and view counts that make no data set (field named)."""
    if not isinstance(train_offset, int) or isinstance(train_offset, bool) or train_offset < 0:
        raise ValueError(f"train_offset must be an integer >= 0, got {train_offset!r}")
    for name, value in (("train_per_class", train_per_class), ("test_per_class", test_per_class)):
        if value is not None and (not isinstance(value, int) or value < 0
                                  or (value == 0 and name == "train_per_class")):
            low = 1 if name == "train_per_class" else 0
            raise ValueError(f"{name} must be an integer >= {low} or None (all), got {value!r}")
    if not isinstance(held_out_views, int) or held_out_views < 0:
        raise ValueError(f"held_out_views must be an integer >= 0, got {held_out_views!r}")
    if test_per_class == 0 and held_out_views == 0:
        raise ValueError("test_per_class is 0 and held_out_views is 0: the test set would be "
                         "empty; give held_out_views >= 1 or test_per_class >= 1")


def load_cifar10(root=None, train_per_class: int | None = None, test_per_class: int | None = None,
                 views: int = 1, max_shift: int = 2, flip: bool = True, download: bool = True,
                 cache: bool = True, cache_dir: str | os.PathLike | None = None,
                 progress: bool = True, held_out_views: int = 0,
                 train_offset: int = 0) -> SourceData:
    """The CIFAR-10 source (see the module docstring for where it looks).

    ``train_per_class`` / ``test_per_class``: keep the first n images of each class
    (by file name, or file order for the pickle layout); None keeps all; a
    ``test_per_class`` of 0 keeps no CIFAR test image (needs ``held_out_views``).
    ``views``, ``max_shift``, ``flip``: the group construction (1 = one group per image).
    ``held_out_views``: more views of each train image, put in the test set.
    ``train_offset``: skip the first k train images of each class, so that a second
    benchmark draws other persons than one that starts at 0.
    ``download``: fetch with torchvision when no copy is found.
    ``cache`` / ``cache_dir``: the decoded-image cache (default ``./data/cache``).
    """
    _check_sizes(train_per_class, test_per_class, held_out_views, train_offset)
    found = find_cifar10(root)
    if found is None:
        if not download:
            raise FileNotFoundError(_missing_message(data_root(root)))
        found = download_cifar10(root)
    kind, folder = found
    cache_dir = Path(cache_dir) if cache_dir is not None else Path.cwd() / "data" / "cache"
    parts = {}
    test_read = None if test_per_class is None else max(test_per_class, 1)  # 0: read 1, drop it
    for split, per_class, offset in (("train", train_per_class, train_offset),
                                     ("test", test_read, 0)):
        if kind == "pickle":
            parts[split] = read_pickle(folder, split, per_class, offset)
        else:
            parts[split] = read_folder(folder, split, per_class, cache=cache,
                                       cache_dir=cache_dir, progress=progress, offset=offset)
    if parts["train"][2] != parts["test"][2]:
        raise ValueError(f"train and test classes differ under {folder}: "
                         f"{parts['train'][2]} vs {parts['test'][2]}")
    n_train = len(parts["train"][1])
    if n_train == 0:
        raise ValueError(f"train_offset {train_offset} skips every train image under {folder}: "
                         "give a smaller offset")
    train = to_image_set(*parts["train"][:2], views + held_out_views, max_shift, flip,
                         first_group=0)
    test = to_image_set(*parts["test"][:2], views, max_shift, flip, first_group=n_train)
    if held_out_views:
        train, frames = split_views(train, views, held_out_views)
        test = frames if test_per_class == 0 else concat(frames, test)
    return SourceData(name="cifar10", train=train, test=test, classes=list(parts["train"][2]))
