"""Time the notebook's runs with the contract's DataLoader and with the device loaders.

    python scripts/bench_notebook.py --input /tmp/mock-bench            # a mock competition
    python scripts/bench_notebook.py --input DIR --methods bad_teacher,reinit_lowgrad --runs 2

After one warm-up run of the first method (untimed), each method gets ``--runs`` timed
notebook runs
(:func:`unlearnkit.kaggle.plan.time_runs`: the original copied from memory, fresh
loaders, the method, the weights copied for the checkpoint writer) with each loader, in
one process on one device; plus the time of one pass over the three loaders alone (the
data path without any method; the median of 5 passes). Prints a markdown table and the contract/device ratios.
Write the mock with ``unlearnkit mock-competition --out DIR --epochs 1``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from unlearnkit.assignments import parse_assignments
from unlearnkit.kaggle.plan import sync, time_runs
from unlearnkit.kaggle.runtime import dataset as ds
from unlearnkit.kaggle.runtime.feed import LOADERS, choose_feed
from unlearnkit.kaggle.runtime.settings import check_method
from unlearnkit.models import load_checkpoint


def pass_seconds(feed, passes: int = 5) -> float:
    """The median time of one pass over a run's three loaders, nothing else."""
    times = []
    for seed in range(passes):
        sync(feed.device)
        start = time.perf_counter()
        for loader in feed.loaders(seed):
            for batch in loader:
                batch["image"].sum()  # touch it, as a method would
        sync(feed.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="a competition folder (e.g. a mock)")
    p.add_argument("--methods", default="bad_teacher,perturb_finetune")
    p.add_argument("--set", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="a hyperparameter of one method (repeatable)")
    p.add_argument("--runs", type=int, default=1, help="timed runs per method and loader")
    p.add_argument("--device", choices=["cpu", "cuda"])
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    sets = parse_assignments(args.set)
    cfgs = {m: check_method(m, {k.split(".", 1)[1]: v for k, v in sets.items()
                                if k.split(".", 1)[0] == m}) for m in methods}
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    folder = Path(args.input)
    datasets = ds.load_datasets(ds.validate_input(folder, folder / "original_model.pth"))
    feeds = {kind: choose_feed(datasets, device, kind) for kind in LOADERS}
    original = load_checkpoint(folder / "original_model.pth", "resnet18").to(device)
    sizes = ", ".join(f"{k} {len(v)}" for k, v in datasets.items())
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"{name}; torch {torch.__version__}; {folder}: {sizes}; {args.runs} timed run(s)\n")
    rows = [("loaders only (one pass)", *(pass_seconds(feeds[k]) for k in ("contract", "device")))]
    time_runs(methods[0], cfgs[methods[0]], feeds["device"], original, 1, first_seed=10_000)
    for method in methods:  # after one warm-up run (lazy initialisation, allocator)
        row = [statistics.median(time_runs(method, cfgs[method], feeds[k], original, args.runs))
               for k in ("contract", "device")]
        rows.append((f"{method} (one run)", *row))
    print("| what | contract DataLoader (s) | device loaders (s) | contract / device |")
    print("|---|---:|---:|---:|")
    for what, contract, dev in rows:
        print(f"| {what} | {contract:.3f} | {dev:.3f} | {contract / dev:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
