"""Benchmarks: which data, split, model, recipe and N a local evaluation uses.

A benchmark is a :class:`Benchmark` dataclass; ``configs/benchmarks/<name>.yaml`` files
(package data, ``src/unlearnkit/configs/``) only override its fields. The name
``competition`` (or any folder in the competition's layout given as ``--data``) reads a
competition folder with its own retain/forget/validation split.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .resources import config_file, config_names
from .train import TRAINER, TrainConfig
from .yaml_files import read_mapping


@dataclass
class Benchmark:
    """Everything that fixes the reference models of a local evaluation."""

    name: str
    """The benchmark's name (its YAML file's stem)."""
    source: str = "digits"
    """Data source: digits | cifar10 | competition."""
    source_options: dict = field(default_factory=dict)
    """Options passed to the source (e.g. ``views``, ``train_per_class``, ``path``)."""
    scenario: str = "random:0.1"
    """What to forget: random:FRACTION | group:K | class:C1,C2 | given."""
    split_seed: int = 0
    """Seed of the split (which examples are forgotten)."""
    model: str = "small_cnn"
    """Network: small_cnn (CPU) | resnet18 (the competition's) | timm:<name> (any timm model)."""
    num_models: int = 16
    """N: unlearned and retrained models compared per example (competition: 512)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Recipe for the original, the reference and the oracle models."""
    loader_batch_size: int = 64
    """Batch size of the loaders handed to a method (the competition's: 64); the
    recipe's own batch size is ``train.batch_size``."""
    method_overrides: dict = field(default_factory=dict)
    """Per-method hyperparameter overrides that fit this benchmark's budget."""
    description: str = ""
    """One line shown in reports."""

    def key_fields(self) -> dict:
        """The fields that change the trained models (not N, not method overrides), and
        the training code's version (:data:`unlearnkit.train.TRAINER`)."""
        return {
            "trainer": TRAINER,
            "source": self.source,
            "source_options": self.source_options,
            "scenario": self.scenario,
            "split_seed": self.split_seed,
            "model": self.model,
            "train": self.train.to_dict(),
        }

    def key(self) -> str:
        """A short hash of :meth:`key_fields`: the cache folder of this benchmark."""
        return stable_hash(self.key_fields())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        return d


def stable_hash(obj, length: int = 12) -> str:
    """Hex digest of the canonical JSON of ``obj`` (same content, same hash)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def benchmark_names() -> list[str]:
    """Names of the benchmarks the kit ships (``unlearnkit/configs/benchmarks``)."""
    return config_names("benchmarks")


def load_benchmark(name_or_path: str, **overrides) -> Benchmark:
    """Read a benchmark by name or YAML path, then apply non-None ``overrides``."""
    path, name = Path(name_or_path), Path(name_or_path).stem
    if path.suffix not in (".yaml", ".yml"):
        path, name = config_file("benchmarks", name_or_path), name_or_path
    if not path.is_file():
        raise ValueError(
            f"unknown benchmark {name_or_path!r}; choose one of: {', '.join(benchmark_names())}"
            f" (or give a path to a YAML file)"
        )
    raw = read_mapping(path, "benchmark YAML", path.read_text())
    raw.setdefault("name", name)
    try:  # the file's own values (a caller's overrides, e.g. a mock's recipe, are its own)
        bench = benchmark_from_dict(raw)
        if bench.train.epochs < 1:
            raise ValueError(TrainConfig.explain("epochs", f"{bench.train.epochs} trains "
                                                 "nothing: a benchmark needs >= 1"))
    except ValueError as err:
        raise ValueError(f"{path}: {err}; fix it in that file") from None
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(bench, **given) if given else bench


FIELD_TYPES = {"name": str, "source": str, "source_options": dict, "scenario": str,
               "split_seed": int, "model": str, "num_models": int, "train": dict,
               "loader_batch_size": int, "method_overrides": dict, "description": str}
"""What each benchmark field holds (checked before the first training)."""


def benchmark_from_dict(raw: dict, **overrides) -> Benchmark:
    """Build a :class:`Benchmark` from plain data, checking the field names, types and
    the training recipe's values."""
    raw = dict(raw)
    valid = {f.name for f in fields(Benchmark)}
    unknown = sorted(set(raw) - valid)
    if unknown:
        raise ValueError(f"unknown benchmark field(s) {unknown}; valid: {sorted(valid)}")
    for key, value in raw.items():
        check_field(key, value)
    raw["train"] = TrainConfig.from_dict(raw.get("train"))
    bench = Benchmark(**raw)
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(bench, **given) if given else bench


def check_field(key: str, value) -> None:
    """Refuse a benchmark field of the wrong type (or a negative count), naming it."""
    kind = FIELD_TYPES[key]
    if key == "train" and value is None:
        return
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        word = {str: "a string", dict: "a mapping", int: "an integer"}[kind]
        raise ValueError(f"benchmark field {key} = {value!r} must be {word}")
    if kind is int and value < (1 if key in ("num_models", "loader_batch_size") else 0):
        raise ValueError(f"benchmark field {key} = {value!r} must be >= "
                         f"{1 if key != 'split_seed' else 0}")
    if key == "method_overrides" and not all(isinstance(v, dict) for v in value.values()):
        raise ValueError(f"benchmark field method_overrides = {value!r} must map each "
                         "method to a mapping of hyperparameter: value")


def scenario_kind(scenario: str) -> str:
    """'class' or 'sample', from the scenario text alone (before any data is read).

    ``class:...`` forgets whole classes; every other scenario (``random``, ``group``,
    ``persons``, ``given``: a predefined split names images, not classes) is sample-level.
    Invalid text raises the split's own ``ValueError``.
    """
    from .data.splits import parse_scenario

    kind, _ = parse_scenario(scenario)
    return "class" if kind == "class" else "sample"
