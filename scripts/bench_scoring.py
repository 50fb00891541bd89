"""Time the fast forget-quality implementation against the dense oracle.

Both run on the same random confidences (the dense one on the first few examples
only), must give identical epsilons there, and their times are printed.

    python scripts/bench_scoring.py [--models 512] [--examples 5000] [--dense-examples 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from unlearnkit.metrics.competition import forget_quality, forget_quality_dense  # noqa: E402


def random_confidences(models: int, examples: int, seed: int):
    """Confidence-like columns: per-example Gaussians, the unlearned side shifted and
    rescaled a little, clipped to the logit-scaled confidence's +-103.6. # [N, S] twice
    """
    rng = np.random.default_rng(seed)
    mean = rng.uniform(-2, 8, examples)
    sd = rng.uniform(0.5, 3, examples)
    retrained = rng.normal(mean, sd, (models, examples))
    shift = rng.normal(0, 0.5, examples)
    scale = rng.uniform(0.8, 1.25, examples)
    unlearned = rng.normal(mean + shift, sd * scale, (models, examples))
    return np.clip(unlearned, -103.6, 103.6), np.clip(retrained, -103.6, 103.6)


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, or platform's guess."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=512, help="N models per side (competition: 512)")
    p.add_argument("--examples", type=int, default=5000, help="forget examples for the fast path")
    p.add_argument("--dense-examples", type=int, default=20, help="examples also scored densely")
    p.add_argument("--workers", type=int, default=1, help="threads for the fast path")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    k = min(a.dense_examples, a.examples)
    u, r = random_confidences(a.models, a.examples, a.seed)
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, numpy {np.__version__}")
    print(f"inputs: N = {a.models} models per side, {a.examples} forget examples, seed {a.seed}")

    t0 = time.perf_counter()
    fast = forget_quality(u, r, workers=a.workers)
    t_fast = time.perf_counter() - t0
    print(f"fast  ({a.workers} worker{'s' * (a.workers > 1)}): {t_fast:8.2f} s total, "
          f"{1e3 * t_fast / a.examples:8.2f} ms/example, F = {fast.score:.6f}")
    if k == 0:
        return 0

    t0 = time.perf_counter()
    dense = forget_quality_dense(u[:, :k], r[:, :k])
    t_dense = time.perf_counter() - t0
    per_dense = t_dense / k
    print(f"dense ({k} examples): {t_dense:8.2f} s total, {1e3 * per_dense:8.2f} ms/example "
          f"(~{per_dense * a.examples:.0f} s for all {a.examples})")
    same = np.array_equal(fast.epsilons[:k], dense.epsilons)
    print(f"agreement on the {k} shared examples: "
          f"{'identical epsilons' if same else 'MISMATCH'}; "
          f"speed-up {per_dense / (t_fast / a.examples):.0f}x per example")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
