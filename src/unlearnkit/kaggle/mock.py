"""A mock competition: a local input folder in the Kaggle layout, to rehearse the notebook.

What makes it competition-like:

- **persons**: the source's groups (several shifted views of one base image, split by
  image across train and test, as a person's video frames are);
- **class imbalance**: whole persons are subsampled per class so that counts fall off
  geometrically, ``imbalance ** c`` of class ``c`` kept: class 0 the most common;
- **forget set**: all training images of whole persons, about ``forget_fraction`` (2%) of
  training, drawn from classes 0 and 1 (the competition's forget set is "almost all of
  classes 0 and 1");
- **validation**: a seeded 10% of the training pool drawn by image, before the forget
  persons are chosen (as :func:`unlearnkit.data.splits.make_split` does);
- **original model**: the competition's resnet18 trained on retain + forget with the
  kit's recipe (:func:`unlearnkit.train.train`; ``epochs`` shortens it on a CPU);
- ``test.csv``: the held-out test set, which the notebook ignores and the scorer uses.

``mock.json`` beside the data records how it was made, the recipe included, so that
``unlearnkit score-submission`` retrains its references the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from unlearnkit.atomic import write_json
from unlearnkit.data.base import SourceData
from unlearnkit.data.competition import export_competition
from unlearnkit.data.sources import get_source
from unlearnkit.data.splits import Split, hold_out_validation
from unlearnkit.train import TrainConfig, accuracy, init_model, train

MOCK_FILE = "mock.json"
FORGET_CLASSES = (0, 1)
SOURCES = ("digits", "cifar10")
DEFAULT_VIEWS = {"digits": 3, "cifar10": 3}


def group_labels(groups: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """Each group's label (its most common one; a view keeps its base image's label)."""
    out = {}
    for g in np.unique(groups):
        out[int(g)] = int(np.bincount(labels[groups == g]).argmax())
    return out


def imbalanced_groups(owner: dict[int, int], num_classes: int, imbalance: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Groups kept so that class ``c`` keeps a share ``imbalance ** c`` of its groups."""
    if not 0.0 < imbalance <= 1.0:
        raise ValueError(f"imbalance must be in (0, 1] (1 = keep every class whole), got {imbalance}")
    groups = np.array(sorted(owner))
    labels = np.array([owner[g] for g in groups])
    kept = []
    for c in range(num_classes):
        mine = groups[labels == c]
        n = max(2, int(round(len(mine) * imbalance ** c))) if len(mine) else 0
        kept.append(rng.choice(mine, size=min(n, len(mine)), replace=False))
    return np.sort(np.concatenate(kept))


def subsample(source: SourceData, keep_groups: np.ndarray) -> SourceData:
    """``source`` restricted to the items of ``keep_groups`` (train and test alike)."""
    def part(data):
        idx = np.flatnonzero(np.isin(data.groups.numpy(), keep_groups))
        return data.subset(idx)

    return SourceData(source.name, part(source.train), part(source.test), list(source.classes))


def choose_forget(groups: np.ndarray, labels: np.ndarray, pool: np.ndarray, target: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Whole persons of classes 0 and 1 from ``pool`` until about ``target`` images."""
    owner = group_labels(groups[pool], labels[pool])
    candidates = [g for g, c in owner.items() if c in FORGET_CLASSES]
    if not candidates:
        raise ValueError("no person of class 0 or 1 in the training pool; nothing to forget")
    chosen, count = [], 0
    sizes = {g: int((groups[pool] == g).sum()) for g in candidates}
    for g in rng.permutation(candidates):
        if count >= target and chosen:
            break
        chosen.append(int(g))
        count += sizes[int(g)]
    return pool[np.isin(groups[pool], chosen)]


def mock_split(source: SourceData, forget_fraction: float, seed: int,
               val_fraction: float = 0.1) -> Split:
    """Validation by image, then forget = whole persons of classes 0/1, the rest retain."""
    if not 0.0 < forget_fraction < 0.5:
        raise ValueError(f"forget_fraction must be in (0, 0.5), got {forget_fraction}")
    rng = np.random.default_rng(seed)
    validation, pool = hold_out_validation(len(source.train), val_fraction, rng)
    groups, labels = source.train.groups.numpy(), source.train.labels.numpy()
    target = max(1, int(round(forget_fraction * len(pool))))
    forget = np.sort(choose_forget(groups, labels, pool, target, rng))
    retain = np.setdiff1d(pool, forget)
    return Split(f"mock:{forget_fraction}", seed, retain, forget, validation,
                 np.arange(len(source.test))).check(source)


def load_source(source: str, root, views: int | None, train_per_class: int | None,
                progress: bool) -> SourceData:
    """The base source with groups of ``views`` views per image."""
    if source not in SOURCES:
        raise ValueError(f"unknown mock source {source!r}; choose one of: {', '.join(SOURCES)}")
    options = {"views": views or DEFAULT_VIEWS[source]}
    if source == "cifar10":
        options.update(train_per_class=train_per_class, progress=progress,
                       test_per_class=None if train_per_class is None else max(1, train_per_class // 5))
    elif train_per_class is not None:
        raise ValueError("--train-per-class applies to cifar10 only (digits is small already)")
    return get_source(source, root=root, **options)


def make_mock_competition(out: str | os.PathLike, source: str = "digits", *, root=None,
                          seed: int = 0, model: str = "resnet18", epochs: int | None = None,
                          forget_fraction: float = 0.02, imbalance: float = 0.7,
                          views: int | None = None, train_per_class: int | None = None,
                          device: str | None = None, overwrite: bool = False,
                          progress: bool = True) -> dict:
    """Write a mock competition input folder at ``out``; return what ``mock.json`` holds.

    ``epochs`` (default: the scorer's 30) shortens the original model's training;
    ``train_per_class`` caps CIFAR-10's base images per class before the views.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite or choose another folder")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    base = load_source(source, root, views, train_per_class, progress)
    rng = np.random.default_rng(seed)
    both = np.concatenate([base.train.groups.numpy(), base.test.groups.numpy()])
    both_labels = np.concatenate([base.train.labels.numpy(), base.test.labels.numpy()])
    data = subsample(base, imbalanced_groups(group_labels(both, both_labels),
                                             base.num_classes, imbalance, rng))
    split = mock_split(data, forget_fraction, seed)
    cfg = TrainConfig() if epochs is None else TrainConfig(epochs=epochs)
    train_set = data.train.subset(np.concatenate([split.retain, split.forget]))
    net = train(init_model(model, seed), train_set, cfg, seed=seed, device=device,
                progress=progress, desc="original model")
    export_competition(data, split, out, original_state=net, overwrite=overwrite,
                       progress=progress)
    info = describe(source, seed, model, cfg, forget_fraction, imbalance, data, split, net, device)
    write_json(out / MOCK_FILE, info)
    return info


def describe(source: str, seed: int, model: str, cfg: TrainConfig, forget_fraction: float,
             imbalance: float, data: SourceData, split: Split, net, device: str) -> dict:
    """The facts of a mock (``mock.json``): sizes, classes, persons, recipe, accuracies."""
    parts = split.parts(data)
    forget_persons = np.unique(parts["forget"].groups.numpy())
    train_set = data.train.subset(np.concatenate([split.retain, split.forget]))
    return {
        "source": source,
        "seed": seed,
        "model": model,
        "train": cfg.to_dict(),
        "forget_fraction": forget_fraction,
        "imbalance": imbalance,
        "sizes": {k: len(v) for k, v in parts.items()},
        "class_counts_train": np.bincount(train_set.labels.numpy(), minlength=10).tolist(),
        "class_counts_forget": np.bincount(parts["forget"].labels.numpy(), minlength=10).tolist(),
        "forget_persons": len(forget_persons),
        "original_accuracy": {
            "train": accuracy(net, train_set, device=device),
            "test": accuracy(net, parts["test"], device=device),
        },
    }
