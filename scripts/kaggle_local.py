"""The Kaggle loop on this machine (``make kaggle-local``): mock data, notebook, score.

    python scripts/kaggle_local.py                          # digits mock, 4 checkpoints
    python scripts/kaggle_local.py --checkpoints 8 --method finetune --set lr=1e-3

Writes ``<out>/input`` (the mock competition, reused when present), ``<out>/work`` (the
checkpoints), ``<out>/output/submission.zip``, ``<out>/executed.ipynb`` (the notebook
with its outputs) and ``<out>/report.json``; prints the score beside both oracles.
"""

from __future__ import annotations

import argparse
import sys

from unlearnkit.assignments import parse_assignments
from unlearnkit.kaggle.local import NotebookFailed, kaggle_local
from unlearnkit.kaggle.score import summary_lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/kaggle-local", help="working folder")
    p.add_argument("--source", choices=["digits", "cifar10"], default="digits")
    p.add_argument("--root", help="data root (cifar10)")
    p.add_argument("--checkpoints", type=int, default=4, help="notebook runs (default 4)")
    p.add_argument("--epochs", type=int, default=2,
                   help="epochs of the original and reference models (default 2: CPU-sized)")
    p.add_argument("--method", help="method (default: the notebook's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    try:
        report = kaggle_local(args.out, source=args.source, root=args.root,
                              checkpoints=args.checkpoints, epochs=args.epochs,
                              method=args.method,
                              hyperparameters=parse_assignments(args.set) or None,
                              device=args.device, progress=not args.quiet)
    except NotebookFailed as err:
        print(err.outputs[-3000:], file=sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(report)))
    t = report["kaggle_local"]
    print(f"times: mock {t['mock_s']:.0f} s, notebook {t['notebook_s']:.0f} s, "
          f"score {t['score_s']:.0f} s; report {args.out}/report.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
