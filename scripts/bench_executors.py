"""The cost of Ray: a benchmark's references built by the process executor, then by Ray.

In one run, for each executor in turn (``--order``): a fresh private cache, then the
original, the N references and both oracle sets
(:func:`unlearnkit.harness.pipeline.prepare_references`), timed from start to end, beside the
sum of the jobs' own training times (``seconds`` in each entry); for Ray the start of the
local instance is timed apart. Then a probe of the per-job overhead alone: ``--probe``
empty jobs through each executor. Prints a Markdown table and the overhead as a ratio
(Ray's wall time / the processes').

    python scripts/bench_executors.py --bench digits --models 8 --workers 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time

from unlearnkit.benchmarks import load_benchmark
from unlearnkit.harness.context import prepare
from unlearnkit.harness.executor import LocalExecutor
from unlearnkit.harness.pipeline import Plan, prepare_references


def time_references(bench, plan: Plan) -> dict:
    """Wall seconds to build every reference model of ``bench`` into ``plan``'s (empty)
    cache, and the sum of the jobs' own training seconds."""
    start = time.perf_counter()
    _, sets = prepare_references(bench, plan)
    wall = time.perf_counter() - start
    ctx_models = [e for entries in sets.values() for e in entries]
    return {"seconds": wall, "load": os.getloadavg()[0],
            "train_seconds": sum(e.meta["seconds"] for e in ctx_models)}


def time_empty_jobs(executor, n: int) -> float:
    """Seconds for ``n`` jobs that do nothing (the executor's own cost per job)."""
    start = time.perf_counter()
    results = list(executor.map(abs, range(n), progress=False))
    assert len(results) == n and not any(r.error for r in results)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", default="digits")
    p.add_argument("--models", type=int, default=8, help="N (default 8)")
    p.add_argument("--workers", type=int, default=2,
                   help="processes, and the local Ray instance's CPUs (default 2)")
    p.add_argument("--probe", type=int, default=200, help="empty jobs per executor")
    p.add_argument("--order", default="process,ray", help="which executor goes first")
    p.add_argument("--json", help="also write the numbers here")
    args = p.parse_args()

    from unlearnkit.harness import ray_executor

    bench = dataclasses.replace(load_benchmark(args.bench), num_models=args.models)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-executors-") as tmp:
        prepare(bench, os.path.join(tmp, "warm-up"), progress=False)  # the driver's imports
        cache = os.path.join(tmp, "cache")
        plan = Plan(workers=args.workers, cache_dir=cache, progress=False)
        for name in args.order.split(","):
            shutil.rmtree(cache, ignore_errors=True)
            if name == "ray":
                start = time.perf_counter()
                ray_executor.connect(num_cpus=args.workers)
                ray_start = time.perf_counter() - start
                rows["ray"] = {**time_references(bench, dataclasses.replace(plan, engine="ray")),
                               "start_seconds": ray_start}
            else:
                rows["process"] = time_references(bench, plan)
        probe = {"process": time_empty_jobs(LocalExecutor(args.workers), args.probe),
                 "ray": time_empty_jobs(ray_executor.RayExecutor(), args.probe)}
        ray_executor.disconnect()
    models = 1 + args.models + 2 * args.models
    print(f"{bench.name}, N = {args.models}: {models} models, {args.workers} at once\n")
    print("| executor | references wall s | jobs' training s (sum) | load at end | "
          f"{args.probe} empty jobs, s | ms per empty job |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in rows.items():
        extra = f" (+ {r['start_seconds']:.1f} s Ray start)" if "start_seconds" in r else ""
        print(f"| {name} | {r['seconds']:.1f}{extra} | {r['train_seconds']:.1f} | "
              f"{r['load']:.2f} | {probe[name]:.2f} | {1000 * probe[name] / args.probe:.1f} |")
    ratio = rows["ray"]["seconds"] / rows["process"]["seconds"]
    with_start = (rows["ray"]["seconds"] + rows["ray"]["start_seconds"]) / rows["process"]["seconds"]
    print(f"\noverhead: Ray / processes = {ratio:.3f} ({with_start:.3f} with Ray's start)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"bench": bench.name, "N": args.models, "workers": args.workers,
                       "rows": rows, "probe": probe, "ratio": ratio,
                       "ratio_with_start": with_start}, fh, indent=2)


if __name__ == "__main__":
    main()
