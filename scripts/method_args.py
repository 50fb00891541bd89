"""The command line shared by the scripts that study one method's setting on a benchmark
(diagnose.py, held_out.py): the benchmark, the method and its overrides, and the plan."""

from __future__ import annotations

import argparse
import os

from unlearnkit.assignments import parse_assignments
from unlearnkit.benchmarks import Benchmark, load_benchmark
from unlearnkit.harness.pipeline import Plan


def parse_method_args(description: str) -> tuple[Benchmark, str, dict, Plan]:
    """``(benchmark, method, overrides, plan)`` from the command line."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--bench", default="digits")
    p.add_argument("--method", required=True)
    p.add_argument("--models", type=int, help="N models per side (override)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a hyperparameter")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--data", default=os.environ.get("UNLEARNKIT_DATA"))
    p.add_argument("--cache", default=None)
    args = p.parse_args()
    bench = load_benchmark(args.bench, num_models=args.models)
    plan = Plan(workers=args.workers, cache_dir=args.cache, data_root=args.data, progress=False)
    return bench, args.method, parse_assignments(args.set), plan
