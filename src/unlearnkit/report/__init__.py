"""Write what a local evaluation found: report.json, report.md, plots, raw confidences.

The Markdown table is what a person reads; the JSON is what a script reads; the PNG
plots (:mod:`.plots`, every plot of the kit) show where the forget quality was lost
(which examples, by how much). The text forms (:func:`markdown`, :func:`terminal_table`)
take the JSON numbers (``EvalResult.summary``), so a saved report.json renders too.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_path, write_json, write_text
from .plots import write_plots

if TYPE_CHECKING:
    from ..data.splits import Split
    from ..metrics.model_sets import Scored


@dataclass
class EvalResult:
    """What an evaluation found, as the report reads it: the JSON-ready numbers and the
    scored sets behind them (made by :mod:`unlearnkit.harness.pipeline`)."""

    summary: dict  # what report.json holds
    split: Split
    ref_confs: np.ndarray  # [N, S] the references' confidences on forget
    oracle_retrain: Scored
    oracle_original: Scored
    method: Scored | None = None  # None while unscored (its runs failed)

    def to_json(self) -> dict:
        """The numbers alone (a copy), ready for ``json.dump``."""
        return dict(self.summary)


def default_out_dir(bench: str, method: str, root: str | Path = "runs") -> Path:
    """``runs/<date>-<bench>-<method>/``, with a counter when that folder exists."""
    base = Path(root) / f"{dt.date.today().isoformat()}-{bench}-{method}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def write_report(result: EvalResult, out: str | Path) -> Path:
    """Write every artefact of ``result`` into the folder ``out``; return it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", result.to_json())
    write_text(out / "report.md", markdown(result.summary))
    result.split.save(out / "split.json")
    if result.method is not None:
        with atomic_path(out / "confidences.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, unlearned_forget=result.method.confs, retrained_forget=result.ref_confs)
        write_plots(result, out)
    return out


def _fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def with_interval(value, interval: dict | None) -> str:
    """``0.1234 [0.1000, 0.1500]``: a number and its 95% interval, when there is one."""
    if interval is None or value is None:
        return _fmt(value)
    return f"{_fmt(value)} [{_fmt(interval['low'])}, {_fmt(interval['high'])}]"


def table_rows(summary: dict) -> list[tuple]:
    """(name, forget quality, score, retain acc, test acc, forget acc) per row, as text;
    F and score carry their 95% intervals when the summary has them."""
    iv = summary.get("intervals") or {}
    rows = []

    def add(name, key, f, score, accs):
        i = iv.get(key, {})
        rows.append((name, with_interval(f, i.get("forget_quality")),
                     with_interval(score, i.get("score")), *(_fmt(a) for a in accs)))

    if "score" in summary:
        a = summary["accuracy"]
        add(summary["method"], "method", summary["forget_quality"], summary["score"],
            (a["retain"], a["test"], a["forget"]))
    for name, o in summary["oracles"].items():
        add(f"oracle: {name}", f"oracle_{name}", o["forget_quality"], o["score"],
            (o["retain_acc"], o["test_acc"], o["forget_acc"]))
    ref = summary["references"]
    rows.append(("references", "-", "-", *(_fmt(ref[k]) for k in ("retain", "test", "forget"))))
    return rows


def verdict(summary: dict) -> list[str]:
    """The method against the oracles in words: fraction of the ceiling, and whether it
    is distinguishable from doing nothing (the original oracle) at 95%."""
    if "score" not in summary:
        return []
    ceiling = summary["oracles"]["retrain"]["score"]
    if not ceiling > 0:
        return ["the retrain oracle scored 0 at this N, so no fraction of it exists: "
                "the references and the oracle are too few or too alike for the metric "
                "(raise --models)"]
    m = (summary.get("intervals") or {}).get("method")
    if m is None:
        return [f"score / retrain oracle: {_fmt(summary['score_vs_retrain_oracle'], 3)}"]
    frac = m["fraction_of_retrain_oracle"]
    diff = m["minus_original_oracle"]
    lines = [f"score / retrain oracle: {_fmt(frac['value'], 3)} "
             f"[{_fmt(frac['low'], 3)}, {_fmt(frac['high'], 3)}] (95%)"]
    if m["distinguishable_from_original"]:
        side = "above" if diff["value"] > 0 else "below"
        lines.append(f"{side} the original oracle (no unlearning) by {_fmt(diff['value'])} "
                     f"[{_fmt(diff['low'])}, {_fmt(diff['high'])}]: distinguishable at 95%")
    else:
        lines.append(f"not distinguishable from the original oracle (no unlearning): the "
                     f"difference {_fmt(diff['value'])} [{_fmt(diff['low'])}, "
                     f"{_fmt(diff['high'])}] includes 0")
    return lines


def markdown(summary: dict) -> str:
    """A report a person reads: the table, the time rule, the settings."""
    lines = [f"# {summary['method']} on {summary['benchmark']} (N = {summary['num_models']})", ""]
    if summary.get("error"):
        lines += [f"**FAILED**: {summary['error']}", ""]
    lines += ["| models | forget quality | score | retain acc | test acc | forget acc |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(summary)]
    lines.append("")
    lines += [f"- {line}" for line in verdict(summary)]
    if "score" in summary:
        flag = " **over the competition's 20% rule**" if summary["over_time_rule"] else ""
        lines += [
            f"- retain and test accuracy ratios: {_fmt(summary['retain_acc_ratio'])}, "
            f"{_fmt(summary['test_acc_ratio'])}",
            f"- time per run: {_fmt(summary['seconds_per_run'], 2)} s = "
            f"{_fmt(100 * summary['time_fraction_of_retrain'], 1)}% of one retrain "
            f"({_fmt(summary['retrain_seconds'], 2)} s){flag}",
        ]
    split = summary["split"]
    lines += [
        f"- split: {split['scenario']} ({split['kind']}): retain {split['retain']}, forget "
        f"{split['forget']}, validation {split['validation']}, test {split['test']}",
        f"- hyperparameters: `{summary['hyperparameters']}`",
        "",
        "Forget quality is the competition's F (per-example epsilons over N unlearned vs N "
        "retrained models); score = F x retain ratio x test ratio. The retrain oracle (N more "
        "retrained models) is the practical ceiling; the original oracle (N models trained "
        "on retain + forget) is the floor. Brackets: 95% intervals from a paired bootstrap "
        "over the forget examples, the N models and the N references "
        "(unlearnkit.metrics.intervals).",
        "",
    ]
    return "\n".join(lines)


def terminal_table(summary: dict) -> str:
    """The summary table for the terminal."""
    return _aligned([("models", "F", "score", "retain", "test", "forget"), *table_rows(summary)])


def side_by_side(summaries: list[dict]) -> str:
    """Several methods scored against the same references, in one table with the
    oracles (from the first summary) and each method's share of one retrain's time."""
    rows = []
    for s in summaries:
        if "score" in s:
            share = f"{100 * s['time_fraction_of_retrain']:.1f}%"
            rows.append((*table_rows(s)[0], share + (" (over 20%)" if s["over_time_rule"] else "")))
    oracles = [r for r in table_rows(summaries[0]) if r[0].startswith(("oracle", "references"))]
    rows.sort(key=lambda r: -float(r[2].split()[0]))
    return _aligned([("models", "F", "score", "retain", "test", "forget", "of a retrain"),
                     *rows, *((*r, "-") for r in oracles)])


def _aligned(rows: list[tuple]) -> str:
    """Rows as text columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in rows)
