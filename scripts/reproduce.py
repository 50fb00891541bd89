"""Reproduce the seed methods and the baselines on CIFAR-10: class removal and sample level.

For each scenario it scores, against one set of N retrained references:

- class removal, forgetting airplane and bird (``class:airplane,bird``, UNSIR's published
  run), with every registered method that serves 'class';
- sample level, a random 10% (``random:0.1``, the starting kit's), with every method that
  serves 'sample';

and for each: the single original model, the original oracle (N models trained on
retain + forget), the retrain oracle (N more retrained models: the ceiling at this N) and
every method's N runs (twice for a method given ``--set METHOD.KEY=VALUE``: with its
published settings and with the override, each row labelled). Columns: forget-class and retain-class test accuracy (class
removal), retain / test / forget accuracy, ZRF (paper's JS and official-code variants),
the simple MIA, and the competition's forget quality F and score at that N.

Tables go to stdout as Markdown, progress to stderr, and every number to a JSON file
(written atomically after each method) with the command, the machine, the code version
and wall times. Models live in the pipeline's cache, so an interrupted run resumes and the
references are shared by all methods (and with ``unlearnkit local-eval``).

    UNLEARNKIT_DATA=/path/to/cifar10 python scripts/reproduce.py --bench cifar10-cpu --models 8
    python scripts/reproduce.py --bench cifar10 --device cuda --fused 32 --models 64
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from unlearnkit.assignments import parse_method_assignments
from unlearnkit.atomic import write_json
from unlearnkit.benchmarks import load_benchmark
from unlearnkit.harness.context import ORIGINAL, ORIGINAL_SEED
from unlearnkit.harness.pipeline import Plan, load_entries, local_eval, prepare_references
from unlearnkit.harness.scoring_core import References
from unlearnkit.methods import get_method, list_methods, resolve_config
from unlearnkit.metrics import model_sets

SCENARIOS = {"class": "class:airplane,bird", "sample": "random:0.1"}
TITLES = {"class": "Class removal: forget airplane and bird (`class:airplane,bird`)",
          "sample": "Sample level: forget a random 10% (`random:0.1`)"}
REPO = Path(__file__).resolve().parents[1]


def log(text: str) -> None:
    """Progress goes to stderr, so stdout holds only the Markdown tables."""
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- command line


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bench", default="cifar10-cpu", help="benchmark: cifar10-cpu | cifar10")
    p.add_argument("--models", type=int, default=None, help="N models per side (default: the "
                   "benchmark's)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None)
    p.add_argument("--fused", type=int, default=None,
                   help="models trained together per job (default: 1 on CPU, 32 on CUDA)")
    p.add_argument("--workers", type=int, default=1, help="jobs run at once (processes)")
    p.add_argument("--scenario", choices=["class", "sample", "both"], default="both")
    p.add_argument("--methods", default=None,
                   help="comma-separated method names (default: every one serving the scenario)")
    p.add_argument("--set", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="benchmark-specific hyperparameter override (repeatable); the method "
                   "is then run twice: published settings, and with its overrides")
    p.add_argument("--out", default=None, help="JSON file (default docs/results-<bench>.json)")
    p.add_argument("--data", default=None, help="data root (else $UNLEARNKIT_DATA)")
    p.add_argument("--cache", default=None, help="cache folder (else $UNLEARNKIT_CACHE or "
                   "data/cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but CUDA is not available here; use --device cpu")
    args.fused = args.fused or (32 if args.device == "cuda" else 1)
    args.out = Path(args.out or REPO / "docs" / f"results-{Path(args.bench).stem}.json")
    return args


def parse_overrides(pairs: list[str]) -> dict[str, dict]:
    """``["unsir.impair_lr=1e-3"]`` -> ``{"unsir": {"impair_lr": 0.001}}``, names checked."""
    out = parse_method_assignments(pairs)
    for method, values in out.items():
        resolve_config(method, values)  # unknown methods or keys, ill-typed values fail now
    return out


def methods_for(kind: str, requested: list[str] | None) -> list[str]:
    """The methods run in scenario ``kind``: the requested ones that serve it, or all."""
    names = requested or list_methods()
    return [m for m in names if kind in get_method(m).scenarios]


# ---------------------------------------------------------------- facts about the run


def machine(device: str) -> dict:
    """The machine in words: CPU model and cores, and the GPU when running on CUDA."""
    info = {"cpu": _cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_model() -> str:
    """``lscpu``'s model name, or the platform's processor string."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def code_version() -> dict:
    """The git commit of the code, and whether the working tree had changes (read-only)."""
    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


# ---------------------------------------------------------------- rows


def set_row(label: str, kind: str, entries, ctx, random_logits, scored: dict | None) -> dict:
    """One table row: accuracies and secondary metrics of ``entries``, F and score if any."""
    acc = {k: float(v.mean()) for k, v in model_sets.accuracies(entries, ctx).items()}
    row = {"label": label, "kind": kind, "n": len(entries),
           "retain_acc": acc["retain"], "test_acc": acc["test"], "forget_acc": acc["forget"],
           **model_sets.secondary_metrics(entries, ctx, random_logits),
           "forget_quality": None, "score": None}
    if scored:
        row.update(forget_quality=scored["forget_quality"], score=scored["score"])
    return row


def reference_rows(ctx, sets: dict, random_logits) -> list[dict]:
    """The single original model, the original oracle and the retrain oracle."""
    refs = References(ctx, sets["refs"])
    oracles = {k: refs.point(sets[k]).to_json() for k in ("retrain", "original")}
    single = load_entries([ctx.model_path(ORIGINAL, ORIGINAL_SEED)])
    n = len(sets["refs"])
    return [
        set_row("original (the single model)", "original", single, ctx, random_logits, None),
        set_row(f"original oracle ({n} models)", "oracle", sets["original"], ctx,
                random_logits, oracles["original"]),
        set_row(f"retrain oracle ({n} models)", "oracle", sets["retrain"], ctx,
                random_logits, oracles["retrain"]),
    ]


def variant_label(method: str, overrides: dict) -> str:
    """``unsir`` for the published settings, ``unsir (impair_lr=0.002)`` for an override."""
    if not overrides:
        return method
    return f"{method} ({', '.join(f'{k}={v}' for k, v in overrides.items())})"


def method_row(bench, method: str, overrides: dict, plan, ctx, random_logits) -> dict:
    """Run (or read from the cache) the method's N runs and measure them."""
    report = local_eval(bench, method, overrides, plan).summary
    label = variant_label(method, overrides)
    facts = {"method": method, "hyperparameters": report["hyperparameters"],
             "overrides": overrides, "wall_seconds": report["wall_seconds"]}
    if report.get("error"):
        return {"label": label, "kind": "method", "n": 0, "error": report["error"], **facts}
    n = bench.num_models
    runs = load_entries([ctx.run_path(method, report["hyperparameters"], s) for s in range(n)])
    row = set_row(label, "method", runs, ctx, random_logits,
                  {"forget_quality": report["forget_quality"], "score": report["score"]})
    row.update(seconds_per_run=report["seconds_per_run"],
               time_fraction_of_retrain=report["time_fraction_of_retrain"], **facts)
    return row


# ---------------------------------------------------------------- scenarios


def run_scenario(kind: str, args, plan, overrides: dict, methods: list[str],
                 save) -> dict:
    """Every row of one scenario; ``save(result)`` is called after each row."""
    bench = load_benchmark(args.bench, scenario=SCENARIOS[kind], num_models=args.models)
    log(f"[{kind}] {bench.name}, {bench.scenario}, N = {bench.num_models}: "
        "original, references and oracles (cached ones are reused)")
    start = time.time()
    ctx, sets = prepare_references(bench, plan)
    result = {"scenario": bench.scenario, "kind": kind, "benchmark": bench.to_dict(),
              "num_models": bench.num_models,
              "split": {"kind": ctx.split.kind, **ctx.split.sizes(),
                        "forget_classes": [ctx.source.classes[c]
                                           for c in ctx.split.forget_classes]},
              "retrain_seconds": float(sets["refs"][0].meta.get("seconds", np.nan)),
              "references_wall_seconds": time.time() - start,
              "random_net": {"seed": model_sets.RANDOM_SEED, "inputs": "standardized"},
              "rows": []}
    random_logits = model_sets.random_net_logits(ctx, device=plan.device)  # [S, C], once
    result["rows"] = reference_rows(ctx, sets, random_logits)
    save(result)
    variants = [(m, v) for m in methods for v in ({}, overrides.get(m)) if v is not None]
    for i, (method, values) in enumerate(variants, 1):
        label = variant_label(method, values)
        log(f"[{kind}] {i}/{len(variants)}: {label} ({bench.num_models} runs)")
        row = method_row(bench, method, values, plan, ctx, random_logits)
        result["rows"].append(row)
        log(f"[{kind}] {label}: " + (f"FAILED: {row['error']}" if row.get("error") else
                                    f"F = {row['forget_quality']:.3f}, score = {row['score']:.4f}"))
        save(result)
    result["wall_seconds"] = time.time() - start
    return result


# ---------------------------------------------------------------- Markdown


def _fmt(value, kind: str) -> str:
    """A cell: percent, 3 or 4 decimals, or a dash for 'not applicable'."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return {"pct": f"{100 * value:.1f}", "3": f"{value:.3f}", "4": f"{value:.4f}",
            "s": f"{value:.1f}"}[kind]


def markdown_table(result: dict) -> str:
    """One scenario's table."""
    cls = result["kind"] == "class"
    cols = ([("forget-class test %", "forget_class_test", "pct"),
             ("retain-class test %", "retain_class_test", "pct")] if cls else []) + [
        ("retain %", "retain_acc", "pct"), ("test %", "test_acc", "pct"),
        ("forget %", "forget_acc", "pct"), ("ZRF (JS)", "zrf_js", "3"),
        ("ZRF (official)", "zrf_official", "3"), ("MIA", "mia", "3"),
        ("F", "forget_quality", "3"), ("score", "score", "4"), ("s/run", "seconds_per_run", "s")]
    lines = ["| models | " + " | ".join(c[0] for c in cols) + " |",
             "| --- |" + " ---: |" * len(cols)]
    for row in result["rows"]:
        if row.get("error"):
            lines.append(f"| {row['label']} | failed: {row['error']} |" + " |" * (len(cols) - 1))
            continue
        lines.append(f"| {row['label']} | " + " | ".join(_fmt(row.get(k), f) for _, k, f in cols)
                     + " |")
    return "\n".join(lines)


def _footnote(kind: str, res: dict) -> str:
    """What a scenario's table needs to be read: sizes, timing, how MIA and ZRF were made."""
    sizes, rnd = res["split"], res["random_net"]
    non_members = " (non-members: test images of the forgotten classes)" if kind == "class" else ""
    return (f"Split: retain {sizes['retain']}, forget {sizes['forget']}, validation "
            f"{sizes['validation']}, test {sizes['test']}. One retrain: "
            f"{res['retrain_seconds']:.0f} s. F and score at N = {res['num_models']}; MIA over "
            f"up to {model_sets.MIA_MODELS} models{non_members}; ZRF against a random "
            f"{res['benchmark']['model']} (seed {rnd['seed']}, {rnd['inputs']} inputs).")


def markdown(results: dict) -> str:
    """Every scenario's table, with the facts needed to read it."""
    out = []
    for kind, res in results["scenarios"].items():
        out += [f"### {TITLES[kind]}: {results['bench']}, N = {res['num_models']}", "",
                markdown_table(res), "", _footnote(kind, res), ""]
    m = results["machine"]
    out.append(f"Command: `{results['command']}`  \nMachine: {m.get('gpu') or m['cpu']} "
               f"({m['cores']} cores); wall time {results.get('wall_seconds', 0) / 60:.1f} min.")
    return "\n".join(out)


# ---------------------------------------------------------------- main


def main(argv=None) -> int:
    """Run the chosen scenarios, save the JSON after each step, print the tables."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    overrides = parse_overrides(args.set)
    requested = [m.strip() for m in args.methods.split(",")] if args.methods else None
    for m in requested or []:
        get_method(m)
    kinds = ["class", "sample"] if args.scenario == "both" else [args.scenario]
    plan = Plan(device=args.device, workers=args.workers, fused=args.fused,
                cache_dir=args.cache, data_root=args.data, progress=not args.quiet)
    results = {"command": "python scripts/reproduce.py " + shlex.join(argv),
               "bench": args.bench, "machine": machine(args.device), "code": code_version(),
               "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "scenarios": {}}
    start = time.time()

    def save(result: dict) -> None:
        results["scenarios"][result["kind"]] = result
        results["wall_seconds"] = time.time() - start
        write_json(args.out, results)

    for kind in kinds:
        methods = methods_for(kind, requested)
        if not methods:
            log(f"[{kind}] none of the requested methods serves this scenario: skipped")
            continue
        save(run_scenario(kind, args, plan, overrides, methods, save))
    print(markdown(results))
    log(f"numbers: {args.out}")
    failed = [r for res in results["scenarios"].values() for r in res["rows"] if r.get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("\ninterrupted: finished models are cached; run the same command to resume.")
        sys.exit(130)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        log(f"error: {err}")
        sys.exit(2)
