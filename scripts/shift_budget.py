"""What per-example shift a method can afford: F under the Gaussian model
(:mod:`unlearnkit.metrics.shift_model`) as a fraction of the retrain's, when each forget
example's unlearned mean sits away from the references' (in their standard deviation)
by the normal quantiles of sd (shifts spread as N(0, sd^2), the same for every row), with
no common shift, for a grid of sds and spreads.

A method's own per-example sd and spread are what `scripts/diagnose.py` prints ("per
example", "spread"); this table says how far each has to fall for a given share of the
retrain oracle. Needs no data and trains nothing.

    python scripts/shift_budget.py --models 32
"""

from __future__ import annotations

import argparse
from statistics import NormalDist

import numpy as np

from unlearnkit.metrics.shift_model import gaussian_forget_quality


def budget(num_models: int, sds, spreads, examples: int, draws: int, seed: int
           ) -> list[list[float]]:
    """Rows over ``sds``, columns over ``spreads``: F / F(sd 0, spread 1)."""
    quantiles = np.array([NormalDist().inv_cdf((i + 0.5) / examples) for i in range(examples)])
    base = gaussian_forget_quality(np.zeros(examples), 1.0, num_models, draws, seed)
    rows = []
    for sd in sds:
        shift = sd * quantiles
        rows.append([gaussian_forget_quality(shift, r, num_models, draws, seed) / base
                     for r in spreads])
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=32, help="N models a side")
    p.add_argument("--sds", default="0,0.25,0.4,0.5,0.6,0.7,0.8,0.9,1.0")
    p.add_argument("--spreads", default="0.8,1.0,1.2")
    p.add_argument("--examples", type=int, default=200, help="forget examples drawn")
    p.add_argument("--draws", type=int, default=8, help="draws of each example")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    try:
        sds = [float(v) for v in a.sds.split(",")]
        spreads = [float(v) for v in a.spreads.split(",")]
    except ValueError:
        raise SystemExit(f"--sds and --spreads take numbers separated by commas, got "
                         f"{a.sds!r} and {a.spreads!r}") from None
    if a.examples < 1:
        raise SystemExit(f"--examples must be at least 1, got {a.examples}")
    rows = budget(a.models, sds, spreads, a.examples, a.draws, a.seed)
    print(f"N = {a.models}: F / retrain under the Gaussian model, no common shift")
    print("per-example sd | " + " | ".join(f"spread {r:g}" for r in spreads))
    for sd, row in zip(sds, rows):
        print(f"{sd:14g} | " + " | ".join(f"{v:9.2f}" for v in row))


if __name__ == "__main__":
    main()
