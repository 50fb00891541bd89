"""Does a local leaderboard rank the Kaggle solutions as Kaggle's private leaderboard did?

Reads one or more ``leaderboard.json`` files of one benchmark and N (later files add rows
the earlier ones lack; rows of one cache are comparable, since each set's interval comes
from a bootstrap stream of its own) and prints:

- Kendall tau between the local order of the six re-implemented solutions plus
  ``finetune`` and their private-leaderboard order (FCS #2, MSG #3, CFW #4, PRMQ #5,
  CT #6, KDE #7, fine-tuning below them all), with scipy's p-value;
- how many of the six beat ``finetune`` and by how much: the paired difference and its
  95% interval, from the board's ``minus_baseline`` column
  (``unlearnkit leaderboard ... --baseline finetune``).

    python scripts/kaggle_fidelity.py runs/leaderboard-cifar10-groups-resnet18/leaderboard.json

``--alias NAME=ROW`` scores a solution by another row; ``ROW@K`` is row ROW of the K-th
board given (e.g. one reading of an ambiguous write-up, run on a board of its own:
``--alias perturb_finetune=perturb_finetune@2``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.stats import kendalltau

PRIVATE_ORDER = ["contrastive_forget", "reinit_lowgrad", "perturb_finetune", "prune_reinit",
                 "conv_transpose", "reset_distill", "finetune"]
"""Kaggle private leaderboard order (FCS, MSG, CFW, PRMQ, CT, KDE), fine-tuning last."""


def load_rows(paths: list[str]) -> tuple[dict, dict]:
    """(rows by name, the first board's first; by ``name@K`` for board K; the first
    board's header); boards must agree on benchmark and N."""
    rows, head = {}, None
    for k, path in enumerate(paths, start=1):
        lb = json.loads(Path(path).read_text())
        key = (lb["benchmark"], lb["num_models"])
        if head is not None and key != (head["benchmark"], head["num_models"]):
            raise SystemExit(f"{path} is {key}, not {(head['benchmark'], head['num_models'])}: "
                             "give boards of one benchmark and N")
        head = head or lb
        for row in lb["rows"]:
            if not row.get("error"):
                rows.setdefault(row["name"], row)
                rows[f"{row['name']}@{k}"] = row
    return rows, head


def fidelity(rows: dict, aliases: dict[str, str]) -> dict:
    """Kendall tau against the private order and the six's differences to finetune."""
    named = {m: rows.get(aliases.get(m, m)) for m in PRIVATE_ORDER}
    missing = [m for m, r in named.items() if r is None]
    if missing:
        raise SystemExit(f"no scored row for {missing}; run the leaderboard with them")
    local = [named[m]["score"]["value"] for m in PRIVATE_ORDER]
    private_rank = list(range(len(PRIVATE_ORDER), 0, -1))  # higher = better, FCS highest
    tau, p = kendalltau(private_rank, local)
    beats = {}
    for m in PRIVATE_ORDER[:-1]:
        diff = named[m].get("minus_baseline")
        if diff is None:
            raise SystemExit(f"{aliases.get(m, m)} has no minus_baseline: run the board with "
                             "--baseline finetune")
        beats[m] = diff
    return {"tau": tau, "p": p, "local": dict(zip(PRIVATE_ORDER, local)), "beats": beats}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("boards", nargs="+", help="leaderboard.json files (one benchmark, one N)")
    p.add_argument("--alias", action="append", default=[], metavar="NAME=ROW",
                   help="score solution NAME by the row named ROW")
    args = p.parse_args(argv)
    aliases = dict(a.split("=", 1) for a in args.alias)
    rows, head = load_rows(args.boards)
    out = fidelity(rows, aliases)
    print(f"{head['benchmark']}, N = {head['num_models']}")
    order = sorted(PRIVATE_ORDER, key=lambda m: -out["local"][m])
    print("local order: " + " > ".join(f"{m} {out['local'][m]:.4f}" for m in order))
    print(f"Kendall tau vs the private order: {out['tau']:+.3f} (p = {out['p']:.3f}, "
          f"{len(PRIVATE_ORDER)} methods)")
    above = [m for m, d in out["beats"].items() if d["moved"] and d["value"] > 0]
    print(f"beat finetune at 95%: {len(above)} of 6; at the point estimate: "
          f"{sum(d['value'] > 0 for d in out['beats'].values())} of 6")
    for m, d in out["beats"].items():
        print(f"  {m:20s} minus finetune {d['value']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]")


if __name__ == "__main__":
    main()
