"""The tiny digits benchmark the harness, leaderboard and executor tests train in seconds.

One epoch of the small CNN, a random 10% forgotten; ``tiny_bench(N)`` gives a fresh dict
(tests add or replace keys, e.g. the scenario, without touching the others' copy).
"""

from __future__ import annotations


def tiny_bench(num_models: int, **changes) -> dict:
    """The tiny benchmark as a YAML-ready dict with N = ``num_models``."""
    bench = {
        "description": "tiny digits for tests",
        "source": "digits",
        "source_options": {"views": 1},
        "scenario": "random:0.1",
        "model": "small_cnn",
        "num_models": num_models,
        "train": {"epochs": 1, "lr": 1e-3},
        "method_overrides": {"finetune": {"epochs": 1}},
    }
    bench.update(changes)
    return bench
