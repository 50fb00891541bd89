"""A benchmark made concrete: its data, its split and where its models are cached.

Cache layout, under ``<cache>/<benchmark name>-<benchmark key>/<data fingerprint>/``:

- ``data.json``: the data's fingerprint, where it was read from and its sizes;
- ``split.json``: the split (made once, then read);
- ``original.pth``: the original model's weights (seed 0 of kind ``original``);
- ``models/<kind>/<seed>.npz``: the outputs of a trained model (kind retrain | original);
- ``runs/<method>/<hash of hyperparameters>/<seed>.npz``: the outputs of a method's run.

The data fingerprint (:func:`fingerprint`) hashes the images (as uint8) and labels the
models see, so a data folder edited in place (labels permuted, images replaced) gets new
models rather than the cached models of its old content; the folders of its old content
are reported as stale (``Context.notes``). Two competition folders given with ``--data``
likewise never share models.

Preparing loads (and hashes) the whole data set, so each process keeps the contexts it
prepared (:func:`context_for`): a job run inline reuses the pipeline's, a worker process
prepares one once.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..atomic import sweep_tmp, write_json
from ..benchmarks import Benchmark, benchmark_from_dict, stable_hash
from ..data.base import ImageSet, SourceData
from ..data.sources import get_source
from ..data.splits import Split, make_split
from ..paths import cache_root

RETRAIN, ORIGINAL = "retrain", "original"  # the kinds of trained models
ORIGINAL_SEED = 0  # the original model is seed 0 of kind original
_KEPT = 2  # prepared contexts a process keeps (one per benchmark in use)
FINGERPRINT_CHARS = 12  # of the data fingerprint, in the cache folder's name
DATA_FILE = "data.json"
_prepared: OrderedDict[tuple, Context] = OrderedDict()


@dataclass
class Context:
    """A benchmark made concrete: its data, its split and its cache folder."""

    bench: Benchmark
    source: SourceData
    split: Split
    parts: dict[str, ImageSet]  # retain, forget, validation, test, train
    folder: Path
    fingerprint: str = ""  # of the data (:func:`fingerprint`), hex sha256
    notes: list[str] = field(default_factory=list)  # stale folders, removed leftovers

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
    return text, str(cache_root(cache_dir)), root


def bench_folder(bench: Benchmark, cache_dir=None) -> Path:
    """``<cache>/<name>-<key>``: the folder of the benchmark's data folders."""
    return cache_root(cache_dir) / f"{bench.name}-{bench.key()}"


def fingerprint(source: SourceData) -> str:
    """sha256 of the data the models see: the images (as uint8) and labels of the training
    pool and the test set, the groups, the predefined split's sizes and the class names."""
    h = hashlib.sha256()
    for name, part in (("train", source.train), ("test", source.test)):
        h.update(f"{name}:{len(part)};".encode())
        h.update(_bytes(part.images.clamp(0, 255).to(torch.uint8)))
        h.update(_bytes(part.labels.to(torch.int64)))
        if part.groups is not None:
            h.update(b"groups;")
            h.update(_bytes(part.groups.to(torch.int64)))
    pre = {k: len(v) for k, v in (source.predefined or {}).items()}
    h.update(json.dumps({"classes": list(source.classes), "predefined": pre},
                        sort_keys=True).encode())
    return h.hexdigest()


def _bytes(t: torch.Tensor) -> memoryview:
    return memoryview(np.ascontiguousarray(t.detach().cpu().numpy())).cast("B")


def prepare(bench: Benchmark, cache_dir: str | Path | None = None,
            data_root: str | Path | None = None, progress: bool | None = None,
            expect_fingerprint: str | None = None) -> Context:
    """Load the benchmark's data, fingerprint it, and read its split (made once).

    ``expect_fingerprint`` (a job's) must match the data read now, else the data changed
    while the evaluation ran. The context is kept for this process's jobs
    (:func:`context_for`).
    """
    source = get_source(bench.source, root=data_root, progress=progress, **bench.source_options)
    fp = fingerprint(source)
    if expect_fingerprint and fp != expect_fingerprint:
        raise RuntimeError(
            f"the data of benchmark {bench.name!r}"
            f"{f' under {data_root}' if data_root else ''} changed while this evaluation ran "
            f"(fingerprint {expect_fingerprint[:FINGERPRINT_CHARS]} became "
            f"{fp[:FINGERPRINT_CHARS]}); leave the data folder alone and run the command again")
    root = bench_folder(bench, cache_dir)
    folder = root / fp[:FINGERPRINT_CHARS]
    notes = [f"removed {p}: a temporary file left by a killed write" for p in sweep_tmp(folder)]
    if not (folder / DATA_FILE).is_file():
        notes += stale_notes(root, folder, data_root)
        write_json(folder / DATA_FILE, {
            "fingerprint": fp, "benchmark": bench.name, "source": bench.source,
            "data_root": _resolved(data_root),
            "train": len(source.train), "test": len(source.test), "classes": source.classes})
    split = _load_or_make_split(folder / "split.json", source, bench)
    parts = split.parts(source)
    parts["train"] = source.train.subset(np.concatenate([split.retain, split.forget]))
    ctx = Context(bench, source, split, parts, folder, fp, notes)
    _keep(context_key(bench, cache_dir, data_root), ctx)
    return ctx


def _resolved(data_root) -> str | None:
    return None if data_root is None else str(Path(data_root).resolve())


def stale_notes(root: Path, folder: Path, data_root) -> list[str]:
    """Notes about the cache folders of ``root`` built from other content of the same
    data (same ``data_root``): their models are stale, and not used."""
    notes = []
    if (root / "models").is_dir() or (root / "original.pth").is_file():
        notes.append(f"{root}/models and original.pth come from an older cache layout that "
                     "did not record which data they were trained on: they are stale and not "
                     f"used; delete them to free space")
    for other in sorted(root.glob(f"*/{DATA_FILE}")):
        if other.parent == folder:
            continue
        try:
            info = json.loads(other.read_text())
        except (OSError, ValueError):
            continue
        if info.get("data_root") == _resolved(data_root):
            where = f"at {data_root}" if data_root else "of this benchmark"
            notes.append(f"the data {where} changed since {other.parent} was built (fingerprint "
                         f"{other.parent.name} now {folder.name}): its cached models are stale "
                         f"and not used; new ones are built in {folder} (delete "
                         f"{other.parent} to free space)")
    return notes


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


def context_for(bench: str, cache_dir: str, data_root: str | None,
                fingerprint: str | None = None) -> Context:
    """The context of a job's benchmark (JSON): the one this process prepared, else a new
    one; either way its data must have ``fingerprint`` (the job's) when given."""
    key = context_key(bench, cache_dir, data_root)
    if key in _prepared and (not fingerprint or _prepared[key].fingerprint == fingerprint):
        _prepared.move_to_end(key)
        return _prepared[key]
    return prepare(benchmark_from_dict(json.loads(bench)), cache_dir, data_root,
                   expect_fingerprint=fingerprint)
