"""Write a tuning study's results: best.yaml, trials.csv, summary.json, plots, report.md.

``best.yaml`` holds the best trial's full method config (every field but ``progress``),
in the format of ``configs/methods/<name>.yaml``: ``local-eval --config best.yaml``
reads it, and its mapping is what the notebook's ``HYPERPARAMETERS`` takes. The plots
come from optuna's matplotlib visualisation (history; parameter importances, which need
two or more complete trials and are left out, with the reason, when they cannot be made).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import yaml

from ..atomic import atomic_dir, atomic_path, write_json, write_text
from ..paths import mark_output
from . import _fmt
from .plots import _pyplot

ROWS = ("tuned", "defaults", "oracle_retrain", "oracle_original")


def write_tune(summary: dict, out: str | Path, command: str = "") -> Path:
    """Every output of ``summary`` (from :func:`unlearnkit.harness.tune.run_tune`) into ``out``,
    swapped in as a whole."""
    study = summary["study_obj"]
    out = Path(out)
    with atomic_dir(out) as tmp:
        plots = write_plots(study, tmp)
        if summary.get("best"):
            write_text(tmp / "best.yaml", best_yaml(summary))
        with atomic_path(tmp / "trials.csv") as path:
            study.trials_dataframe().to_csv(path, index=False)
        data = {k: v for k, v in summary.items() if k != "study_obj"}
        write_json(tmp / "summary.json", {**data, "plots": plots})
        write_text(tmp / "report.md", markdown(data, plots, command))
        mark_output(tmp, command)
    return out


def best_yaml(summary: dict) -> str:
    best = summary["best"]
    head = (f"# {summary['method']} tuned on {summary['benchmark']} (N = {summary['num_models']}),"
            f" study {summary['study']}: trial {best['number']}, score {best['value']:.4f}\n"
            f"# use: unlearnkit local-eval --bench {summary['benchmark']} --method "
            f"{summary['method']} --config best.yaml\n")
    return head + yaml.safe_dump(best["hyperparameters"], sort_keys=False)


def write_plots(study, out: Path) -> dict:
    """``{plot: file name or the reason it is missing}``."""
    plt = _pyplot()
    import optuna
    from optuna.visualization import matplotlib as ovm

    made = {}
    for name, fn in (("history", ovm.plot_optimization_history),
                     ("importances", ovm.plot_param_importances)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = fn(study)
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.set_size_inches(7, 4)
            fig.tight_layout()
            with atomic_path(out / f"{name}.png") as tmp:
                fig.savefig(tmp, format="png", dpi=110)
            plt.close(fig)
            made[name] = f"{name}.png"
        except (ValueError, RuntimeError, ZeroDivisionError, optuna.exceptions.OptunaError) as err:
            made[name] = f"not drawn: {err}"
            plt.close("all")
    return made


def _iv(i: dict | None) -> str:
    if not i:
        return "-"
    return f"{_fmt(i['value'])} [{_fmt(i['low'])}, {_fmt(i['high'])}]"


def _table(scores: dict) -> list[str]:
    lines = ["| set | F | score | of a retrain |", "| --- | ---: | ---: | ---: |"]
    for row in ROWS:
        if row in scores:
            frac = scores[row].get("time_fraction_of_retrain")
            lines.append(f"| {row} | {_iv(scores[row]['forget_quality'])} | "
                         f"{_iv(scores[row]['score'])} | "
                         f"{'-' if frac is None else f'{100 * frac:.1f}%'} |")
    d = scores["tuned_minus_defaults"]
    lines.append(f"| tuned - defaults | | {_iv(d)} | "
                 f"{'moved' if d['moved'] else 'within the interval'} |")
    return lines


def markdown(s: dict, plots: dict, command: str = "") -> str:
    """The report a person reads."""
    t = s["trials"]
    lines = [f"# Tuning {s['method']} on {s['benchmark']}, N = {s['num_models']}", ""]
    if command:
        lines += ["```", command, "```", ""]
    states = ", ".join(f"{v} {k}" for k, v in t.items() if k not in ("total", "ran_now"))
    lines += [f"- study `{s['study']}` in `{s['storage']}` (TPE, seed {s['seed']}): "
              f"{t['total']} trials ({states}); "
              f"{t['ran_now']} run by this command",
              f"- time rule: a trial is pruned when its runs take more than "
              f"{100 * s['time_fraction']:.0f}% of one retrain ({s['retrain_seconds']:.2f} s)",
              f"- space: {', '.join(f'{k}={v}' for k, v in s['space'].items())}"
              + (f"; fixed: {s['fixed']}" if s["fixed"] else ""),
              f"- wall time {s['wall_seconds'] / 60:.1f} min", ""]
    best = s.get("best")
    if not best:
        lines += ["**No trial completed**: every one was pruned or failed (see trials.csv); "
                  "raise --time-fraction or narrow --space (fewer epochs, for example).", ""]
        return "\n".join(lines + _plot_lines(plots))
    r = s["rescored"]
    frac = best.get("time_fraction_of_retrain")
    lines += [f"## Best: trial {best['number']}, score {best['value']:.4f}", "",
              "Settings: " + ", ".join(f"`{k}={v}`" for k, v in best["settings"].items())
              + (f"; its runs take {100 * frac:.1f}% of a retrain" if frac is not None else ""),
              *(["", "**The best settings are the defaults**: no trial beat them."]
                if best["hyperparameters"] == s["defaults"] else []),
              "", "## Against the tuning references (seeds 0..N-1, runs 0..N-1)", "",
              *_table(r["tuning"]), "",
              "The tuned score here is the maximum over the trials: optimistic by selection.", "",
              "## Held out (references N..2N-1, runs N..2N-1)", "", *_table(r["held_out"]), ""]
    dis = r["disagreement"]
    lines.append(
        f"Tuned score, tuning vs held-out references: difference {dis['difference']:+.4f} "
        f"against a combined half-width of {dis['combined_half_width']:.4f}: "
        + ("**they disagree beyond the interval** (the tuning overfitted its references, "
           "or N is too small to tell settings apart)" if dis["disagree"]
           else "they agree within the interval"))
    hp = best["hyperparameters"]
    lines += ["", "## Use it", "", "```",
              f"unlearnkit local-eval --bench {s['benchmark']} --method {s['method']} "
              "--config best.yaml",
              f"unlearnkit build-notebook --method {s['method']} "
              + " ".join(f"--set {k}={v!r}" if isinstance(v, str) else f"--set {k}={v}"
                         for k, v in hp.items()),
              "```", "", f"or, in the notebook's config cell: `HYPERPARAMETERS = {hp!r}`", ""]
    return "\n".join(lines + _plot_lines(plots))


def _plot_lines(plots: dict) -> list[str]:
    out = []
    for name, what in plots.items():
        out.append(f"![{name}]({what})" if what.endswith(".png") else f"- {name} plot {what}")
    return out + [""]
