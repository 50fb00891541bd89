"""Seeded, saved splits of a source's training pool into retain / forget / validation.

Scenarios (text, as in configs and on the command line):

- ``random:F``: forget a random fraction F of the training part, like the starting
  kit's 10% of CIFAR-10. Drawn as whole groups when the source has groups (the views
  of one digit), so no near-copy of a forgotten image stays in retain; with one image
  per group (CIFAR-10's default) it is a plain random sample of images.
- ``group:K``: forget every training image of K groups (persons) drawn at random among
  the groups present in the training part, like the competition's 15 people.
- ``persons:F``: forget every training image of whole persons of classes 0 and 1 until
  about a fraction F of the pool (the competition's forget set, about 2%; see
  :mod:`unlearnkit.data.persons`).
- ``class:C1,C2``: forget whole classes, given by index or by name. Each group must
  hold one class (true of views and of the competition's persons), else a group would
  straddle retain and forget and the split is refused.
- ``given``: the source's predefined split (the competition folder's CSVs).

Validation is a seeded fraction of the pool drawn by image before forget is chosen,
so, as in the competition, a person's frames can sit in validation and in train; a
forget group is nevertheless entirely in forget within the training part. In class
scenarios the forget classes are removed from validation too (their validation items
go to forget): retain and validation then hold no trace of them, and the test set
still has them, so forget-class test accuracy stays measurable.

Invariants (:meth:`Split.check`): retain, forget and validation are disjoint, cover the
pool and forget is non-empty; no group has images in both retain and forget; forget
classes are absent from retain and validation.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from ..atomic import write_json
from .base import ImageSet, SourceData
from .persons import choose_persons

SCENARIOS = ("random:FRACTION", "group:K", "persons:FRACTION", "class:C1,C2,...", "given")
_PARTS = ("retain", "forget", "validation", "test")


def parse_scenario(text: str) -> tuple[str, object]:
    """``(kind, argument)`` from scenario text: ('random', 0.1), ('group', 15),
    ('class', ['3', 'cat']) (names resolved later, against a source) or ('given', None)."""
    name, _, arg = str(text).strip().partition(":")
    name, arg = name.strip().lower(), arg.strip()
    if name == "given" and not arg:
        return "given", None
    if name == "random" and arg:
        frac = _number(arg, float, text)
        if not 0.0 < frac < 1.0:
            raise ValueError(f"scenario {text!r}: the fraction must be between 0 and 1, e.g. random:0.1")
        return "random", frac
    if name == "group" and arg:
        k = _number(arg, int, text)
        if k < 1:
            raise ValueError(f"scenario {text!r}: the number of groups must be >= 1, e.g. group:15")
        return "group", k
    if name == "persons" and arg:
        frac = _number(arg, float, text)
        if not 0.0 < frac < 0.5:
            raise ValueError(f"scenario {text!r}: the fraction must be between 0 and 0.5, "
                             f"e.g. persons:0.02")
        return "persons", frac
    if name == "class" and arg:
        return "class", [c.strip() for c in arg.split(",") if c.strip()]
    raise ValueError(f"unknown scenario {text!r}; valid forms: {', '.join(SCENARIOS)}")


def _number(arg: str, kind: type, text: str):
    """``kind(arg)``, or a ValueError that names the scenario."""
    try:
        return kind(arg)
    except ValueError:
        raise ValueError(f"scenario {text!r}: {arg!r} is not a valid {kind.__name__}") from None


def resolve_classes(source: SourceData, names: list[str]) -> list[int]:
    """Class indices from indices or names of ``source.classes``; unknown ones raise."""
    out = []
    for name in names:
        if name in source.classes:
            out.append(source.classes.index(name))
        elif name.lstrip("-").isdigit() and 0 <= int(name) < source.num_classes:
            out.append(int(name))
        else:
            raise ValueError(f"unknown class {name!r} for source {source.name!r}; choose indices "
                             f"0-{source.num_classes - 1} or names: {', '.join(source.classes)}")
    return sorted(set(out))


@dataclass
class Split:
    """Index arrays into ``source.train`` (retain, forget, validation) and ``source.test``."""

    scenario: str
    seed: int
    retain: np.ndarray  # [n_retain] int64
    forget: np.ndarray  # [n_forget] int64
    validation: np.ndarray  # [n_val] int64
    test: np.ndarray  # [n_test] int64, indices into source.test
    forget_classes: list[int] = field(default_factory=list)

    def __post_init__(self):
        for name in _PARTS:
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64).reshape(-1))
        self.forget_classes = [int(c) for c in self.forget_classes]

    @property
    def kind(self) -> str:
        """'class' for whole-class forgetting, else 'sample'."""
        return "class" if self.forget_classes else "sample"

    def sizes(self) -> dict[str, int]:
        """Number of items in each part."""
        return {name: len(getattr(self, name)) for name in _PARTS}

    def parts(self, source: SourceData) -> dict[str, ImageSet]:
        """The retain, forget, validation and test image sets of ``source``."""
        out = {name: source.train.subset(getattr(self, name)) for name in _PARTS[:3]}
        out["test"] = source.test.subset(self.test)
        return out

    def to_dict(self) -> dict:
        """A JSON-ready dict (index arrays as lists)."""
        d = {"scenario": self.scenario, "seed": self.seed, "forget_classes": self.forget_classes}
        d.update({name: getattr(self, name).tolist() for name in _PARTS})
        return d

    def save(self, path: str | os.PathLike) -> None:
        """Write the split as JSON, atomically."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Split:
        """Read a split written by :meth:`save`."""
        with open(path) as f:
            d = json.load(f)
        missing = [k for k in ("scenario", "seed", *_PARTS) if k not in d]
        if missing:
            raise ValueError(f"{path} is not a saved split: missing {missing}")
        return cls(**{k: d[k] for k in ("scenario", "seed", *_PARTS)},
                   forget_classes=d.get("forget_classes", []))

    def check(self, source: SourceData) -> Split:
        """Raise ``ValueError`` naming the first broken invariant; return self when sound."""
        n, n_test = len(source.train), len(source.test)
        parts = [self.retain, self.forget, self.validation]
        joined = np.concatenate(parts)
        if len(joined) != n or not np.array_equal(np.sort(joined), np.arange(n)):
            raise ValueError(f"split {self.scenario!r}: retain/forget/validation must be disjoint "
                             f"and cover the {n} training items; they hold {len(joined)} indices, "
                             f"{len(np.unique(joined))} distinct. Was it made for another source?")
        if len(self.forget) == 0:
            raise ValueError(f"split {self.scenario!r}: the forget set is empty")
        if len(self.test) and (self.test.min() < 0 or self.test.max() >= n_test
                               or len(np.unique(self.test)) != len(self.test)):
            raise ValueError(f"split {self.scenario!r}: test indices must be distinct, in 0..{n_test - 1}")
        self._check_groups(source)
        self._check_classes(source)
        return self

    def _check_groups(self, source: SourceData) -> None:
        """No group may have images in both retain and forget."""
        if source.train.groups is None:
            return
        groups = source.train.groups.numpy()
        both = np.intersect1d(groups[self.retain], groups[self.forget])
        if len(both):
            raise ValueError(f"split {self.scenario!r}: {len(both)} group(s) straddle retain and "
                             f"forget (e.g. group {both[0]})")

    def _check_classes(self, source: SourceData) -> None:
        """Forget classes must be wholly in forget: absent from retain and validation."""
        if not self.forget_classes:
            return
        labels = source.train.labels.numpy()
        kept = np.concatenate([self.retain, self.validation])
        leaked = np.intersect1d(labels[kept], self.forget_classes)
        if len(leaked):
            raise ValueError(f"split {self.scenario!r}: forget class(es) {leaked.tolist()} still "
                             "appear in retain or validation")


def hold_out_validation(n: int, val_fraction: float, rng: np.random.Generator
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``(validation, pool)``: a random ``val_fraction`` of ``range(n)`` and the rest, sorted."""
    order = rng.permutation(n)
    n_val = int(round(val_fraction * n))
    return np.sort(order[:n_val]), np.sort(order[n_val:])


def make_split(source: SourceData, scenario: str, seed: int = 0, val_fraction: float = 0.1) -> Split:
    """Split ``source.train`` by ``scenario`` (see the module docstring), seeded; checked."""
    kind, arg = parse_scenario(scenario)
    test = np.arange(len(source.test))
    if kind == "given":
        return _given(source, scenario, seed, test).check(source)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    validation, pool = hold_out_validation(len(source.train), val_fraction, rng)
    forget, forget_classes = _choose_forget(source, kind, arg, pool, rng, scenario)
    if kind == "class":  # forget classes leave validation too (see the module docstring)
        labels = source.train.labels.numpy()
        moved = validation[np.isin(labels[validation], forget_classes)]
        validation = np.setdiff1d(validation, moved)
        forget = np.union1d(forget, moved)
    retain = np.setdiff1d(pool, forget)
    if len(forget) == 0:
        raise ValueError(f"scenario {scenario!r} leaves the forget set empty; forget more")
    if len(retain) == 0:
        raise ValueError(f"scenario {scenario!r} leaves the retain set empty; forget less")
    return Split(scenario, seed, retain, forget, validation, test, forget_classes).check(source)


def _given(source: SourceData, scenario: str, seed: int, test: np.ndarray) -> Split:
    """The source's predefined split."""
    pre = source.predefined
    if not pre:
        raise ValueError(f"source {source.name!r} has no predefined split; use one of "
                         f"{', '.join(s for s in SCENARIOS if s != 'given')}")
    missing = [k for k in ("retain", "forget", "validation") if k not in pre]
    if missing:
        raise ValueError(f"source {source.name!r}: predefined split lacks {missing}")
    return Split(scenario, seed, np.sort(pre["retain"]), np.sort(pre["forget"]),
                 np.sort(pre["validation"]), test)


def _whole_groups(groups: np.ndarray, pool: np.ndarray, k: int,
                  rng: np.random.Generator) -> np.ndarray:
    """About ``k`` items of ``pool``, made of whole groups drawn in random order.

    Groups are added until the count is nearest ``k``; with one image per group this
    is exactly a random sample of ``k`` images.
    """
    present, counts = np.unique(groups[pool], return_counts=True)
    order = rng.permutation(len(present))
    total = np.cumsum(counts[order])  # [G] items after taking the first g+1 groups
    take = int(np.argmin(np.abs(total - k))) + 1
    return pool[np.isin(groups[pool], present[order[:take]])]


def _choose_forget(source: SourceData, kind: str, arg, pool: np.ndarray,
                   rng: np.random.Generator, scenario: str) -> tuple[np.ndarray, list[int]]:
    """Forget indices (within ``pool``) and forget classes for one scenario kind."""
    if kind == "random":
        k = int(round(arg * len(pool)))
        if k < 1:
            raise ValueError(f"scenario {scenario!r}: {arg} of {len(pool)} items is none; forget more")
        if source.train.groups is None:
            return np.sort(rng.choice(pool, size=k, replace=False)), []
        return _whole_groups(source.train.groups.numpy(), pool, k, rng), []
    if kind in ("group", "persons") and source.train.groups is None:
        raise ValueError(f"source {source.name!r} has no groups; use random: or class: instead "
                         f"(or give the source views)")
    if kind == "persons":
        target = max(1, int(round(arg * len(pool))))
        labels = source.train.labels.numpy()
        return np.sort(choose_persons(source.train.groups.numpy(), labels, pool, target, rng)), []
    if kind == "group":
        if source.train.groups is None:
            raise ValueError(f"source {source.name!r} has no groups; use random: or class: instead")
        groups = source.train.groups.numpy()
        present = np.unique(groups[pool])
        if arg > len(present):
            raise ValueError(f"scenario {scenario!r}: asks for {arg} groups but the training part "
                             f"has only {len(present)}")
        chosen = rng.choice(present, size=arg, replace=False)
        return pool[np.isin(groups[pool], chosen)], []
    classes = resolve_classes(source, arg)
    labels = source.train.labels.numpy()
    return pool[np.isin(labels[pool], classes)], classes
