"""Competition-style data: imbalanced classes of whole persons, and persons to forget.

The competition's data (CASIA-SURF faces, age groups as labels) has persons with many
frames each, classes of very different sizes, and a forget set made of every training
image of a few persons, "almost all of classes 0 and 1", about 2% of training. Both the
mock competition (``unlearnkit mock-competition``) and the CPU benchmark
``cifar10-groups-cpu`` build that shape from a source with groups (its views) with the
two functions here, so the harness rehearses the same scenario the notebook meets:

- :func:`imbalanced` keeps whole persons per class so that class ``c`` keeps a share
  ``imbalance ** c`` of them (class 0 the most common);
- :func:`choose_persons` picks whole persons of classes 0 and 1 until about a target
  number of images (the split's ``persons:F`` scenario).
"""

from __future__ import annotations

import numpy as np

from .base import SourceData

FORGET_CLASSES = (0, 1)
"""The classes whose persons are forgotten (the competition's "classes 0 and 1")."""


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


def imbalanced(source: SourceData, imbalance: float, seed: int) -> SourceData:
    """``source`` with whole persons dropped so that class ``c`` keeps ``imbalance ** c``."""
    if source.train.groups is None or source.test.groups is None:
        raise ValueError(f"source {source.name!r} has no groups (persons) to subsample; give it "
                         f"views (e.g. source_options: {{views: 3}})")
    rng = np.random.default_rng(seed)
    both = np.concatenate([source.train.groups.numpy(), source.test.groups.numpy()])
    both_labels = np.concatenate([source.train.labels.numpy(), source.test.labels.numpy()])
    owner = group_labels(both, both_labels)
    return subsample(source, imbalanced_groups(owner, source.num_classes, imbalance, rng))


def choose_persons(groups: np.ndarray, labels: np.ndarray, pool: np.ndarray, target: int,
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
