"""Write what a local evaluation found: report.json, report.md, plots, raw confidences.

The Markdown table is what a person reads; the JSON is what a script reads; the PNG
plots (:mod:`.plots`, every plot of the kit) show where the forget quality was lost
(which examples, by how much).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np

from ..io import atomic_path, write_json, write_text
from .plots import write_plots


def default_out_dir(bench: str, method: str, root: str | Path = "runs") -> Path:
    """``runs/<date>-<bench>-<method>/``, with a counter when that folder exists."""
    base = Path(root) / f"{dt.date.today().isoformat()}-{bench}-{method}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def public(report: dict) -> dict:
    """The report without its in-memory objects (keys starting with '_')."""
    return {k: v for k, v in report.items() if not k.startswith("_")}


def write_report(report: dict, out: str | Path) -> Path:
    """Write every artefact of ``report`` into the folder ``out``; return it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", public(report))
    write_text(out / "report.md", markdown(report))
    if report.get("_split") is not None:
        report["_split"].save(out / "split.json")
    scored = report.get("_scored", {})
    method = scored.get("method")
    if method is not None:
        with atomic_path(out / "confidences.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, unlearned_forget=method.confs, retrained_forget=scored["ref_confs"])
        write_plots(report, method, scored, out)
    return out


def _fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def table_rows(report: dict) -> list[tuple]:
    """(name, forget quality, score, retain acc, test acc, forget acc) per row."""
    rows = []
    if "score" in report:
        a = report["accuracy"]
        rows.append((report["method"], report["forget_quality"], report["score"],
                     a["retain"], a["test"], a["forget"]))
    for name, o in report["oracles"].items():
        rows.append((f"oracle: {name}", o["forget_quality"], o["score"], o["retain_acc"],
                     o["test_acc"], o["forget_acc"]))
    ref = report["references"]
    rows.append(("references", None, None, ref["retain"], ref["test"], ref["forget"]))
    return rows


def markdown(report: dict) -> str:
    """A report a person reads: the table, the time rule, the settings."""
    lines = [f"# {report['method']} on {report['benchmark']} (N = {report['num_models']})", ""]
    if report.get("error"):
        lines += [f"**FAILED**: {report['error']}", ""]
    lines += ["| models | forget quality | score | retain acc | test acc | forget acc |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in table_rows(report)]
    lines.append("")
    if "score" in report:
        flag = " **over the competition's 20% rule**" if report["over_time_rule"] else ""
        lines += [
            f"- score / retrain-oracle score: {_fmt(report['score_vs_retrain_oracle'], 3)}",
            f"- retain and test accuracy ratios: {_fmt(report['retain_acc_ratio'])}, "
            f"{_fmt(report['test_acc_ratio'])}",
            f"- time per run: {_fmt(report['seconds_per_run'], 2)} s = "
            f"{_fmt(100 * report['time_fraction_of_retrain'], 1)}% of one retrain "
            f"({_fmt(report['retrain_seconds'], 2)} s){flag}",
        ]
    split = report["split"]
    lines += [
        f"- split: {split['scenario']} ({split['kind']}): retain {split['retain']}, forget "
        f"{split['forget']}, validation {split['validation']}, test {split['test']}",
        f"- hyperparameters: `{report['hyperparameters']}`",
        "",
        "Forget quality is the competition's F (per-example epsilons over N unlearned vs N "
        "retrained models); score = F x retain ratio x test ratio. The retrain oracle (N more "
        "retrained models) is the practical ceiling; the original oracle (N models trained "
        "on retain + forget) is the floor.",
        "",
    ]
    return "\n".join(lines)


def terminal_table(report: dict) -> str:
    """The summary table for the terminal."""
    head = ("models", "F", "score", "retain", "test", "forget")
    rows = [head] + [tuple(_fmt(v) for v in r) for r in table_rows(report)]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in rows)
