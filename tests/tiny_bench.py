"""The tiny digits benchmark the harness, leaderboard and executor tests train in seconds.

One epoch of the small CNN, a random 10% forgotten; ``tiny_bench(N)`` gives a fresh dict,
so a test that changes a key (e.g. the scenario) leaves the other tests' copy alone.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def tiny_bench(num_models: int) -> dict:
    """The tiny benchmark as a YAML-ready dict with N = ``num_models``."""
    return {
        "description": "tiny digits for tests",
        "source": "digits",
        "source_options": {"views": 1},
        "scenario": "random:0.1",
        "model": "small_cnn",
        "num_models": num_models,
        "train": {"epochs": 1, "lr": 1e-3},
        "method_overrides": {"finetune": {"epochs": 1}},
    }


def write_tiny_bench(folder: Path, num_models: int = 4) -> Path:
    """The tiny benchmark written as ``folder/tiny.yaml``; its path."""
    path = Path(folder) / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_bench(num_models)))
    return path


def tiny_cli(command: str, bench_file: Path, root: Path, *extra: str) -> int:
    """``unlearnkit COMMAND --bench bench_file --quiet --cache root/cache ...``'s exit code."""
    from unlearnkit.cli import main

    return main([command, "--bench", str(bench_file), "--quiet", "--cache",
                 str(root / "cache"), *extra])
