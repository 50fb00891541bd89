"""A benchmark made concrete: its data, its split and where its models are cached.

Cache layout, under ``<cache>/<benchmark name>-<benchmark key>/``:

- ``split.json``: the split (made once, then read);
- ``original.pth``: the original model's weights (seed 0 of kind ``original``);
- ``models/<kind>/<seed>.npz``: the outputs of a trained model (kind retrain | original);
- ``runs/<method>/<hash of hyperparameters>/<seed>.npz``: the outputs of a method's run.

Preparing loads the whole data set, so each process keeps the contexts it prepared
(:func:`context_for`): a job run inline reuses the pipeline's, a worker process prepares
one once.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import cache as cache_mod
from .benchmarks import Benchmark, benchmark_from_dict, stable_hash
from .data.base import ImageSet, SourceData
from .data.sources import get_source
from .data.splits import Split, make_split

RETRAIN, ORIGINAL = "retrain", "original"  # the kinds of trained models
ORIGINAL_SEED = 0  # the original model is seed 0 of kind original
_KEPT = 2  # prepared contexts a process keeps (one per benchmark in use)
_prepared: OrderedDict[tuple, Context] = OrderedDict()


@dataclass
class Context:
    """A benchmark made concrete: its data, its split and its cache folder."""

    bench: Benchmark
    source: SourceData
    split: Split
    parts: dict[str, ImageSet]  # retain, forget, validation, test, train
    folder: Path

    @property
    def original_path(self) -> Path:
        return self.folder / "original.pth"

    def model_path(self, kind: str, seed: int) -> Path:
        return self.folder / "models" / kind / f"{seed}.npz"

    def run_path(self, method: str, hp: dict, seed: int) -> Path:
        return self.folder / "runs" / method / stable_hash(hp) / f"{seed}.npz"


def bench_json(bench: Benchmark) -> str:
    """The benchmark as canonical JSON: picklable, hashable, readable."""
    return json.dumps(bench.to_dict(), sort_keys=True)


def context_key(bench: Benchmark | str, cache_dir, data_root) -> tuple[str, str, str | None]:
    """What identifies a prepared context: the benchmark, the cache root, the data root."""
    text = bench if isinstance(bench, str) else bench_json(bench)
    root = None if data_root is None else str(data_root)
    return text, str(cache_mod.cache_root(cache_dir)), root


def prepare(bench: Benchmark, cache_dir: str | Path | None = None,
            data_root: str | Path | None = None, progress: bool | None = None) -> Context:
    """Load the benchmark's data and its split (made once, then read from the cache).

    The context is kept for this process's jobs (:func:`context_for`).
    """
    source = get_source(bench.source, root=data_root, progress=progress, **bench.source_options)
    folder = cache_mod.cache_root(cache_dir) / f"{bench.name}-{bench.key()}"
    split = _load_or_make_split(folder / "split.json", source, bench)
    parts = split.parts(source)
    parts["train"] = source.train.subset(np.concatenate([split.retain, split.forget]))
    ctx = Context(bench, source, split, parts, folder)
    _keep(context_key(bench, cache_dir, data_root), ctx)
    return ctx


def _load_or_make_split(path: Path, source: SourceData, bench: Benchmark) -> Split:
    if path.is_file():
        return Split.load(path).check(source)
    split = make_split(source, bench.scenario, seed=bench.split_seed)
    split.save(path)
    return split


def _keep(key: tuple, ctx: Context) -> None:
    _prepared[key] = ctx
    _prepared.move_to_end(key)
    while len(_prepared) > _KEPT:
        _prepared.popitem(last=False)


def context_for(bench: str, cache_dir: str, data_root: str | None) -> Context:
    """The context of a job's benchmark (JSON): the one this process prepared, else a new one."""
    key = context_key(bench, cache_dir, data_root)
    if key in _prepared:
        _prepared.move_to_end(key)
        return _prepared[key]
    return prepare(benchmark_from_dict(json.loads(bench)), cache_dir, data_root)
