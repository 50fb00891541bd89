"""A mock competition: a local input folder in the Kaggle layout, to rehearse the notebook.

What makes it competition-like:

- **persons**: the source's groups (several shifted views of one base image, split by
  image across train and test, as a person's video frames are);
- **class imbalance**: whole persons are subsampled per class so that counts fall off
  geometrically, ``imbalance ** c`` of class ``c`` kept: class 0 the most common;
- **forget set**: all training images of whole persons, about ``forget_fraction`` (2%) of
  training, drawn from classes 0 and 1 (the competition's forget set is "almost all of
  classes 0 and 1"): the split's ``persons:F`` scenario (both from
  :mod:`unlearnkit.data.persons`, shared with the ``cifar10-groups-cpu`` benchmark);
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
from unlearnkit.data.persons import imbalanced
from unlearnkit.data.sources import get_source
from unlearnkit.data.splits import Split, make_split
from unlearnkit.train import TrainConfig, accuracy, init_model, train

MOCK_FILE = "mock.json"
SOURCES = ("digits", "cifar10")
DEFAULT_VIEWS = {"digits": 3, "cifar10": 3}


def _count(value) -> bool:
    """True for an integer (``bool`` excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_options(source: str, *, seed=0, model="resnet18", epochs=None, forget_fraction=0.02,
                  imbalance=0.7, views=None, train_per_class=None, min_epochs: int = 0) -> None:
    """Raise a one-line ``ValueError`` for any option out of its range, before any work.

    ``epochs`` must be an integer >= ``min_epochs``: the command line asks for 1 (an
    untrained original would make a meaningless rehearsal); the library lets a test ask
    for 0 (an untrained original, quickly).
    """
    from unlearnkit.models import model_names

    if source not in SOURCES:
        raise ValueError(f"unknown mock source {source!r}; choose one of: {', '.join(SOURCES)}")
    if not _count(seed) or seed < 0:
        raise ValueError(f"--seed must be an integer >= 0, got {seed!r}")
    if model not in model_names():
        raise ValueError(f"unknown model {model!r} (--model); choose one of: "
                         f"{', '.join(model_names())}")
    if epochs is not None and (not _count(epochs) or epochs < min_epochs):
        raise ValueError(f"--epochs must be an integer >= {min_epochs} (the original "
                         f"model's training epochs; default 30), got {epochs!r}"
                         + ("; 0 would write an untrained original" if epochs == 0 else ""))
    if not isinstance(forget_fraction, (int, float)) or not 0.0 < forget_fraction < 0.5:
        raise ValueError(f"--forget-fraction must be a number in (0, 0.5), the share of the "
                         f"training images to forget (default 0.02), got {forget_fraction!r}")
    if not isinstance(imbalance, (int, float)) or not 0.0 < imbalance <= 1.0:
        raise ValueError(f"--imbalance must be a number in (0, 1], the share of persons class "
                         f"c keeps being imbalance**c (1 = balanced; default 0.7), "
                         f"got {imbalance!r}")
    if views is not None and (not _count(views) or views < 1):
        raise ValueError(f"--views must be an integer >= 1, the images per person "
                         f"(default 3), got {views!r}")
    if train_per_class is not None:
        if source != "cifar10":
            raise ValueError("--train-per-class applies to cifar10 only (digits is small already)")
        if not _count(train_per_class) or train_per_class < 1:
            raise ValueError(f"--train-per-class must be an integer >= 1, the CIFAR-10 base "
                             f"images kept per class (default: all 5000), got {train_per_class!r}")


def mock_split(source: SourceData, forget_fraction: float, seed: int) -> Split:
    """Validation by image, then forget = whole persons of classes 0/1, the rest retain."""
    if not 0.0 < forget_fraction < 0.5:
        raise ValueError(f"forget_fraction must be in (0, 0.5), got {forget_fraction}")
    return make_split(source, f"persons:{forget_fraction}", seed)


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

    ``epochs`` (default: the scorer's 30) shortens the original model's training (0: an
    untrained original, for tests; the command line refuses it); ``train_per_class`` caps
    CIFAR-10's base images per class before the views. Every option is checked
    (:func:`check_options`) before any work.
    """
    out = Path(out)
    check_options(source, seed=seed, model=model, epochs=epochs, forget_fraction=forget_fraction,
                  imbalance=imbalance, views=views, train_per_class=train_per_class)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite or choose another folder")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    base = load_source(source, root, views, train_per_class, progress)
    data = imbalanced(base, imbalance, seed)
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
