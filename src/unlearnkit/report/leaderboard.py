"""Write a leaderboard: leaderboard.md (a person reads it), .json, and one PNG.

The PNG has two panels: every row's score with its 95% interval (the oracles drawn as
bands), and score against seconds per run with the 20%-of-a-retrain line.
"""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_dir, atomic_path, write_json, write_text
from ..metrics.competition import TIME_RULE
from ..paths import mark_output
from . import _fmt
from .plots import _pyplot

ORACLES = ("oracle_retrain", "oracle_original")


def over_time_rule(row: dict) -> bool:
    """True when a method's mean run costs more than 20% of one retrain."""
    frac = row.get("time_fraction_of_retrain")
    return frac is not None and frac > TIME_RULE


def _iv(i: dict | None, digits: int = 4) -> str:
    if not i:
        return "-"
    return f"{_fmt(i['value'], digits)} [{_fmt(i['low'], digits)}, {_fmt(i['high'], digits)}]"


def _settings(row: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in row["settings"].items()) or "defaults"


def markdown(lb: dict, command: str = "") -> str:
    """The leaderboard as a Markdown table, ranked by score, oracles included."""
    gap = lb.get("oracle_gap") or {}
    lines = [f"# Leaderboard: {lb['benchmark']}, N = {lb['num_models']}", ""]
    if command:
        lines += ["```", command, "```", ""]
    base = lb.get("baseline")
    extra = f" minus {base} |" if base else ""
    lines += ["| rank | method | settings | F | score | / retrain oracle | beats doing nothing? "
              f"| s/run | of a retrain | retain | test | forget |{extra}",
              "| ---: | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
              + (" --- |" if base else "")]
    rank = 0
    for row in lb["rows"]:
        if row.get("error"):
            lines.append(f"| - | {row['name']} | {_settings(row)} | FAILED: {row['error']} "
                         "| | | | | | | | |" + (" |" if base else ""))
            continue
        oracle = row["name"] in ORACLES
        rank += 0 if oracle else 1
        versus = "-" if oracle else _verdict(row)
        a = row["accuracy"]
        frac = row.get("time_fraction_of_retrain")
        time_cell = "-" if frac is None else f"{100 * frac:.1f}%" + (" (over 20%)" if
                                                                     over_time_rule(row) else "")
        lines.append(
            f"| {'-' if oracle else rank} | {'**' + row['name'] + '**' if oracle else row['name']} "
            f"| {'-' if oracle else _settings(row)} | {_iv(row['forget_quality'])} "
            f"| {_iv(row['score'])} | {_iv(row.get('fraction_of_retrain_oracle'), 3)} "
            f"| {versus} | {_fmt(row.get('seconds_per_run'), 2)} | {time_cell} "
            f"| {_fmt(a['retain'])} | {_fmt(a['test'])} | {_fmt(a['forget'])} |"
            + (f" {_versus_cell(row)} |" if base else ""))
    split = lb["split"]
    lines += ["",
              f"- split: {split['scenario']} ({split['kind']}): retain {split['retain']}, forget "
              f"{split['forget']}, validation {split['validation']}, test {split['test']}",
              f"- one retrain: {_fmt(lb['retrain_seconds'], 2)} s; wall time "
              f"{lb['wall_seconds'] / 60:.1f} min",
              f"- oracle gap (retrain - original score): {_iv(gap)} = "
              f"{_fmt(gap.get('in_half_widths'), 1)} half-widths",
              "- brackets: 95% intervals (exact value +- 1.96 standard errors of a paired "
              f"bootstrap, {lb['bootstrap']['resamples']} resamples); 'beats doing nothing?' "
              "compares each score with the original oracle's (no unlearning) on the same "
              "resamples", ""]
    return "\n".join(lines)


def _versus_cell(row: dict) -> str:
    """The paired difference to the baseline, and whether its interval excludes 0."""
    diff = row.get("minus_baseline")
    if not diff:
        return "-"
    word = ("above" if diff["value"] > 0 else "below") if diff["moved"] else "level"
    return f"{_iv(diff)} {word}"


def _verdict(row: dict) -> str:
    """Does the method beat the original oracle (no unlearning) at 95%?"""
    diff = row.get("minus_original_oracle")
    if diff is None:
        return "-"
    if not row["distinguishable_from_original"]:
        return "indistinguishable"
    return "yes" if diff["value"] > 0 else "no: below it"


def plot(lb: dict, path: Path) -> None:
    """Scores with their intervals, and score against seconds per run (PNG)."""
    plt = _pyplot()
    rows = [r for r in lb["rows"] if not r.get("error")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.45 * len(rows) + 2.5))
    try:
        names = [r["name"] for r in rows][::-1]
        values = [r["score"]["value"] for r in rows][::-1]
        lows = [r["score"]["value"] - r["score"]["low"] for r in rows][::-1]
        highs = [r["score"]["high"] - r["score"]["value"] for r in rows][::-1]
        colors = ["tab:gray" if n in ORACLES else "tab:blue" for n in names]
        left.barh(names, values, xerr=[lows, highs], color=colors, capsize=3)
        for r in rows:
            if r["name"] in ORACLES:
                left.axvspan(r["score"]["low"], r["score"]["high"], color="tab:gray", alpha=0.12)
        left.set_xlabel(f"score, 95% interval (N = {lb['num_models']})")
        left.set_title(f"{lb['benchmark']}: methods and oracles (gray)")
        timed = [r for r in rows if r.get("seconds_per_run") is not None]
        for r in timed:
            right.errorbar(r["seconds_per_run"], r["score"]["value"],
                           yerr=[[r["score"]["value"] - r["score"]["low"]],
                                 [r["score"]["high"] - r["score"]["value"]]], fmt="o", capsize=3)
            right.annotate(r["name"], (r["seconds_per_run"], r["score"]["value"]), fontsize=8,
                           xytext=(4, 4), textcoords="offset points")
        right.axvline(0.2 * lb["retrain_seconds"], color="tab:red", linestyle="--",
                      label="20% of one retrain")
        for r in rows:
            if r["name"] in ORACLES:
                right.axhline(r["score"]["value"], color="tab:gray", linestyle=":", linewidth=1)
        right.set_xlabel("seconds per run")
        right.set_ylabel("score")
        right.set_title("score against run time")
        right.legend(fontsize=8)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)


def write_leaderboard(lb: dict, out: str | Path, command: str = "") -> Path:
    """leaderboard.md, leaderboard.json and leaderboard.png into ``out``, swapped in as a
    whole and marked as the kit's (:func:`unlearnkit.paths.mark_output`)."""
    out = Path(out)
    with atomic_dir(out) as tmp:
        write_json(tmp / "leaderboard.json", lb)
        write_text(tmp / "leaderboard.md", markdown(lb, command))
        plot(lb, tmp / "leaderboard.png")
        mark_output(tmp, command)
    return out
