"""The ``unlearnkit`` command line: parse, call, print. The only room that knows all others."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .assignments import parse_assignments
from .kaggle import commands as kaggle_commands


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def device_of(asked: str | None) -> str:
    """``--device``, checked: cuda only where torch sees a GPU; else the default."""
    import torch

    if asked == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no GPU on this machine (no CUDA device or "
                         "driver, or a CPU-only torch build); use --device cpu, or leave "
                         "--device out to pick the GPU when there is one")
    return asked or _default_device()


def add_executor_options(p) -> None:
    """``--executor``, ``--address``, ``--gpus-per-job``: where the jobs run."""
    g = p.add_argument_group("executor")
    g.add_argument("--executor", choices=["process", "ray"], default="process",
                   help="process: local worker processes (--workers); ray: Ray tasks on a "
                   "local instance sized to this machine, or on the cluster at --address "
                   "(needs the extra: pip install -e .[ray]; --workers is then unused)")
    g.add_argument("--address", help="Ray cluster to join (HOST:PORT of `ray start --head`); "
                   "its nodes must see --cache and --data at the same paths")
    g.add_argument("--gpus-per-job", type=float, metavar="G",
                   help="under Ray, the GPU share of a one-model CUDA job (default 0.25; a "
                   "fused chunk takes a whole GPU)")


def executor_fields(args) -> dict:
    """The Plan fields that ``add_executor_options`` set."""
    return {"engine": args.executor, "address": args.address,
            "gpus_per_job": args.gpus_per_job}


def add_plan_options(p, workers_help: str = "jobs run at once (processes, one thread "
                     "each: the results do not depend on it)") -> None:
    """The options :func:`plan_from` reads: --workers, --fused, --device, --data, --cache,
    --quiet and the executor's."""
    p.add_argument("--workers", type=int, default=1, help=workers_help)
    p.add_argument("--fused", type=int, default=None,
                   help="models trained together per job (default: 1 on CPU, 32 on CUDA)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None)
    p.add_argument("--data", help="data root (else $UNLEARNKIT_DATA); the folder for `competition`")
    p.add_argument("--cache", help="cache folder (else $UNLEARNKIT_CACHE or data/cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_executor_options(p)


def plan_from(args, **extra):
    """The run plan of a command with --workers, --fused, --device, --cache, --data,
    --quiet and the executor options (fused: 32 models per job on CUDA, 1 on the CPU)."""
    from .harness.pipeline import Plan

    device = device_of(args.device)
    if args.executor == "ray" and args.workers != 1:
        raise ValueError(f"--workers {args.workers} is for the process executor; under "
                         "--executor ray the jobs take the Ray instance's slots (its CPUs, "
                         "or the cluster's): drop --workers")
    return Plan(device=device, workers=args.workers,
                fused=args.fused or (32 if device == "cuda" else 1), cache_dir=args.cache,
                data_root=args.data, progress=not args.quiet, **executor_fields(args), **extra)


def add_local_eval(sub) -> None:
    p = sub.add_parser("local-eval", help="score a method with the competition metric, locally",
                       description="Train (or read from the cache) the original, N references "
                       "and both oracles, run the method N times, and score it.")
    p.add_argument("--bench", default="digits", help="benchmark name or YAML (default: digits)")
    p.add_argument("--method", default="bad_teacher",
                   help="method name; several separated by commas (default: bad_teacher)")
    p.add_argument("--scenario", help="override: random:F | group:K | class:C1,C2 | given")
    p.add_argument("--models", type=int, help="N models per side (override)")
    p.add_argument("--out", help="output folder (default runs/<date>-<bench>-<method>/), replaced "
                   "as a whole when the run succeeds")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="method hyperparameter override (repeatable)")
    p.add_argument("--config", help="a YAML of hyperparameters (configs/methods/<name>.yaml's "
                   "format, e.g. tune's best.yaml), or a folder of <method>.yaml; --set wins")
    p.add_argument("--fresh", action="store_true", help="ignore the cache and rebuild everything")
    p.add_argument("--keep-models", action="store_true",
                   help="also keep each unlearned model's weights in the cache")
    add_plan_options(p)
    p.set_defaults(func=cmd_local_eval)


def write_run(result, out: Path) -> Path:
    """Write a run's report into a fresh temporary folder, marked as the kit's, then swap
    it in for ``out``: a reused ``--out`` never mixes two runs' files. A failed run leaves
    a previous run's folder as it was and goes to ``<out>.failed`` instead (when that
    folder is free for the kit to replace)."""
    from .atomic import atomic_dir
    from .paths import check_out_dir, mark_output
    from .report import write_report

    if result.summary.get("error") and out.is_dir() and any(out.iterdir()):
        out = out.with_name(f"{out.name}.failed")
        check_out_dir(out)
    with atomic_dir(out) as tmp:
        write_report(result, tmp)
        mark_output(tmp, command_line())
    return out


def command_line() -> str:
    """The command as typed (for reports and the output's manifest)."""
    import shlex

    return "unlearnkit " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def run_outs(args_out: str | None, bench: str, methods: list[str]) -> dict[str, Path]:
    """Each method's output folder: ``--out`` (``--out/<method>`` for several), else
    ``runs/<date>-<bench>-<method>``."""
    from .report import default_out_dir

    if not args_out:
        return {m: default_out_dir(bench, m) for m in methods}
    if len(methods) == 1:
        return {methods[0]: Path(args_out)}
    return {m: Path(args_out) / m for m in methods}


def config_overrides(method: str, path: str | None) -> dict:
    """``--config``'s hyperparameters for ``method`` (a file, or ``<folder>/<method>.yaml``);
    {} without one. Names and ranges are checked with the rest of the config."""
    from .methods import _yaml_overrides

    return _yaml_overrides(method, path) if path else {}


def cmd_local_eval(args) -> int:
    from .benchmarks import load_benchmark
    from .harness.pipeline import check_plan, check_request, local_eval, one_pool
    from .method_settings import method_settings
    from .paths import check_paths
    from .report import side_by_side, terminal_table, verdict

    bench = load_benchmark(args.bench, scenario=args.scenario, num_models=args.models)
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    if not methods:
        raise ValueError(f"--method {args.method!r} names no method; give one or more names "
                         "separated by commas (`unlearnkit list` shows them)")
    sets = parse_assignments(args.set)
    # every layer read and checked before any work (--config's YAML: file, line, column)
    settings = {m: method_settings(m, bench, args.config, sets) for m in methods}
    outs = run_outs(args.out, bench.name, methods)
    for out in outs.values():
        check_paths(out_dir=out, cache=args.cache, data=args.data)
    overrides = {m: {**config_overrides(m, args.config), **sets} for m in methods}
    plan = plan_from(args, fresh=args.fresh, keep_models=args.keep_models)
    check_plan(plan)
    for method in methods:  # every method, before the first training
        check_request(bench, [method], overrides[method])
    failed, summaries = 0, []
    with one_pool(plan) as plan:  # one set of worker processes for every method
        for method in methods:
            result = local_eval(bench, method, overrides[method], plan)
            result.summary["settings"] = settings[method].trace()  # each value and its layer
            summaries.append(result.summary)
            plan.fresh = False  # rebuild once, then share
            out = write_run(result, outs[method])
            s = result.summary
            print(f"\n{s['method']} on {bench.name}, N = {s['num_models']}:")
            print(terminal_table(s))
            if s.get("error"):
                failed += 1
                print(f"FAILED: {s['error']}", file=sys.stderr)
            else:
                print("\n".join(verdict(s)))
                print(f"run time {100 * s['time_fraction_of_retrain']:.1f}% of a retrain"
                      + ("  (over the 20% rule)" if s["over_time_rule"] else ""))
            if out.name.endswith(".failed"):
                print(f"the previous run in {out.with_name(out.name[:-len('.failed')])} is left as "
                      "it was", file=sys.stderr)
            print(f"report: {out / 'report.md'}")
    if len(summaries) > 1:
        print(f"\nside by side on {bench.name}, N = {bench.num_models} (95% intervals):")
        print(side_by_side(summaries))
    return 1 if failed else 0


def add_leaderboard(sub) -> None:
    p = sub.add_parser("leaderboard", help="rank every method that serves a benchmark, "
                       "with intervals, against one set of references",
                       description="Run (or read from the cache) every registered method that "
                       "serves the benchmark's scenario at one N, score all of them and both "
                       "oracles against the same references with 95%% intervals, and write "
                       "runs/leaderboard-<bench>/ (leaderboard.md, .json, .png).")
    p.add_argument("--bench", default="digits", help="benchmark name or YAML (default: digits)")
    p.add_argument("--methods", default="all",
                   help="'all' (every method serving the scenario) or names separated by commas")
    p.add_argument("--models", type=int, help="N models per side (override)")
    p.add_argument("--out", help="output folder (default runs/leaderboard-<bench>/)")
    p.add_argument("--set", action="append", metavar="METHOD.KEY=VALUE",
                   help="a method's hyperparameter override (repeatable)")
    p.add_argument("--baseline", metavar="METHOD",
                   help="also give every row its score minus this method's, with a paired "
                        "interval (e.g. finetune: which methods beat fine-tuning?)")
    add_plan_options(p, "jobs run at once (processes)")
    p.set_defaults(func=cmd_leaderboard)


def cmd_leaderboard(args) -> int:
    from .assignments import parse_method_assignments
    from .benchmarks import load_benchmark
    from .harness.leaderboard import run_leaderboard
    from .paths import check_paths
    from .report.leaderboard import markdown, write_leaderboard

    bench = load_benchmark(args.bench, num_models=args.models)
    names = None if args.methods.strip() == "all" else \
        [m.strip() for m in args.methods.split(",") if m.strip()]
    if names == []:
        raise ValueError(f"--methods {args.methods!r} names no method; give 'all' or names "
                         "separated by commas (`unlearnkit list` shows them)")
    out = Path(args.out or Path("runs") / f"leaderboard-{bench.name}")
    check_paths(out_dir=out, cache=args.cache, data=args.data)
    plan = plan_from(args)
    lb = run_leaderboard(bench, plan, names, parse_method_assignments(args.set), args.baseline)
    out = write_leaderboard(lb, out, command_line())
    print(markdown(lb))
    print(f"leaderboard: {out / 'leaderboard.md'}")
    return 1 if any(r.get("error") for r in lb["rows"]) else 0


def add_tune(sub) -> None:
    p = sub.add_parser("tune", help="tune a method's hyperparameters against the competition "
                       "score (optuna TPE, resumable in SQLite)",
                       description="Search the method's declared space (beside each config "
                       "field; `unlearnkit list METHOD`) with optuna's seeded TPE: each trial "
                       "runs the method N times from the cached original and scores it against "
                       "the cached references; trials over the time rule are pruned. The study "
                       "is kept in SQLite (a rerun resumes it); the best settings are re-scored "
                       "on held-out references. Writes runs/tune-<bench>-<method>/.")
    p.add_argument("--bench", default="digits", help="benchmark name or YAML (default: digits)")
    p.add_argument("--method", required=True, help="the method to tune")
    p.add_argument("--trials", type=int, default=20,
                   help="trials the study should hold; a rerun runs only the missing ones "
                   "(default: 20)")
    p.add_argument("--models", type=int, help="N models per side (override)")
    p.add_argument("--time-fraction", type=float, default=0.2,
                   help="prune a trial whose runs take more than this fraction of one "
                   "retrain (default: 0.2, the competition's rule)")
    p.add_argument("--space", action="append", metavar="NAME=LOW:HIGH[:log]",
                   help="replace a field's search range (NAME=A,B for a field with choices); "
                   "repeatable")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="fix a hyperparameter (not searched); repeatable")
    p.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler (default: 0)")
    p.add_argument("--study", help="study name (default: <bench>-<method>)")
    p.add_argument("--storage", help="optuna storage URL (default: sqlite:///data/studies/"
                   "<bench>-<method>.db)")
    p.add_argument("--timeout", type=float,
                   help="start no new trial after this many seconds of trials")
    p.add_argument("--out", help="output folder (default runs/tune-<bench>-<method>/)")
    add_plan_options(p, "runs of one trial at once (processes, like local-eval's); to share a "
                     "study between processes, run the same command twice")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args) -> int:
    from .benchmarks import load_benchmark
    from .harness.tune import TuneRequest, run_tune, storage_url
    from .paths import check_paths
    from .report.tune import write_tune

    bench = load_benchmark(args.bench, num_models=args.models)
    req = TuneRequest(bench, args.method, trials=args.trials, time_fraction=args.time_fraction,
                      seed=args.seed, study=args.study, storage=args.storage,
                      space=args.space or [], fixed=parse_assignments(args.set),
                      timeout=args.timeout)
    out = Path(args.out or Path("runs") / f"tune-{bench.name}-{args.method}")
    check_paths(out_dir=out, cache=args.cache, data=args.data, storage=storage_url(req))
    summary = run_tune(req, plan_from(args))
    out = write_tune(summary, out, command_line())
    t, best = summary["trials"], summary["best"]
    print(f"{t['total']} trials ({t['ran_now']} now) in study {summary['study']}")
    if not best:
        print("no trial completed (all pruned or failed): see trials.csv", file=sys.stderr)
        print(f"report: {out / 'report.md'}")
        return 1
    r = summary["rescored"]
    for where in ("tuning", "held_out"):
        row = r[where]
        d = row["tuned_minus_defaults"]
        print(f"{where:>8}: tuned {row['tuned']['score']['value']:.4f} "
              f"[{row['tuned']['score']['low']:.4f}, {row['tuned']['score']['high']:.4f}]  "
              f"defaults {row['defaults']['score']['value']:.4f}  difference {d['value']:+.4f} "
              f"[{d['low']:+.4f}, {d['high']:+.4f}]{'  (moved)' if d['moved'] else ''}")
    if r["disagreement"]["disagree"]:
        print("the held-out re-score disagrees with the tuned score beyond the interval")
    print(f"best (trial {best['number']}): "
          + ", ".join(f"{k}={v}" for k, v in best["settings"].items()))
    print(f"best config: {out / 'best.yaml'}\nreport: {out / 'report.md'}")
    return 0


def add_train_original(sub) -> None:
    p = sub.add_parser("train-original", help="train and save a benchmark's original model")
    p.add_argument("--bench", default="digits")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None)
    p.add_argument("--data", help="data root (else $UNLEARNKIT_DATA)")
    p.add_argument("--cache", help="cache folder (else $UNLEARNKIT_CACHE or data/cache)")
    p.add_argument("--out", help="also copy the checkpoint here")
    p.add_argument("--fresh", action="store_true")
    add_executor_options(p)
    p.set_defaults(func=cmd_train_original)


def cmd_train_original(args) -> int:
    import shutil

    from .benchmarks import load_benchmark
    from .harness.cache import load_outputs
    from .harness.context import ORIGINAL, ORIGINAL_SEED, prepare
    from .harness.jobs import load_original
    from .harness.pipeline import Plan, check_plan, ensure_original
    from .paths import check_paths, is_checkpoint
    from .train import accuracy

    bench = load_benchmark(args.bench)
    check_paths(out_file=args.out, keep_file=is_checkpoint, cache=args.cache, data=args.data)
    plan = Plan(device=device_of(args.device), cache_dir=args.cache,
                data_root=args.data, fresh=args.fresh, **executor_fields(args))
    check_plan(plan)
    ctx = prepare(bench, plan.cache_dir, plan.data_root, plan.progress)
    for text in ctx.notes:
        print(f"note: {text}", file=sys.stderr)
    ensure_original(ctx, plan)
    net = load_original(ctx, plan.device)
    for part in ("train", "test"):
        print(f"{part:>5} accuracy: {accuracy(net, ctx.parts[part], device=plan.device):.4f}")
    meta = load_outputs(ctx.model_path(ORIGINAL, ORIGINAL_SEED)).meta
    print(f"trained in {meta['seconds']:.1f} s ({bench.model}, {len(ctx.parts['train'])} "
          f"images, {bench.train.epochs} epochs, {plan.device})")
    print(f"original model: {ctx.original_path}")
    if args.out:
        from .atomic import atomic_path

        with atomic_path(args.out) as tmp:
            shutil.copyfile(ctx.original_path, tmp)
        print(f"copied to {args.out}")
    return 0


def add_list(sub) -> None:
    p = sub.add_parser("list", help="list methods, benchmarks, data sources and models; "
                       "with METHOD, that method's settings and where each came from")
    p.add_argument("method", nargs="?", help="print this method's fields: value, the layer "
                   "that set it (default, configs/methods/<name>.yaml, the benchmark's "
                   "method_overrides, --config, --set), valid values and what each is")
    p.add_argument("--bench", help="with METHOD: apply this benchmark's method_overrides")
    p.add_argument("--config", help="with METHOD: a YAML of hyperparameters, as local-eval's")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="with METHOD: a hyperparameter override, as local-eval's (repeatable)")
    p.add_argument("--markdown", action="store_true",
                   help="print the methods as README.md's Markdown table")
    p.add_argument("--into", metavar="FILE", help="with --markdown: write the table into FILE "
                   "between its markers (make readme: README.md)")
    p.set_defaults(func=cmd_list)


def print_method(name: str, bench=None, config: str | None = None,
                 sets: dict | None = None) -> None:
    """A method's summary, scenarios and every config field: its value, the layer that
    set it, what it accepts and its doc."""
    import textwrap

    from .method_settings import method_settings
    from .methods import get_method

    spec = get_method(name)
    settings = method_settings(name, bench, config, sets)
    print(f"{name}: {spec.summary}")
    where = f" on benchmark {bench.name}" if bench is not None else ""
    print(f"serves: {', '.join(spec.scenarios)}; settings{where} (each with the layer that "
          f"set it; override with --set KEY=VALUE)\n")
    values, sources = settings.config.to_dict(), settings.sources
    for field, _, accepted, doc in spec.config.describe():
        print(f"  {field} = {values[field]!r}   from {sources[field]}; accepts {accepted}")
        for line in textwrap.wrap(doc, 84):
            print(f"      {line}")


def cmd_list(args) -> int:
    from .benchmarks import benchmark_names, load_benchmark
    from .data.sources import source_names
    from .methods import get_method, list_methods
    from .models import model_names
    from .report.methods import markdown_table, write_into

    if args.method:
        bench = load_benchmark(args.bench) if args.bench else None
        print_method(args.method, bench, args.config, parse_assignments(args.set))
        return 0
    if args.bench or args.config or args.set:
        raise ValueError("--bench, --config and --set go with a METHOD: "
                         "`unlearnkit list METHOD --bench B`")
    if args.into and not args.markdown:
        raise ValueError("--into writes the Markdown table: add --markdown")
    if args.markdown:
        if args.into:
            changed = write_into(args.into)
            print(f"{args.into}: method table {'rewritten' if changed else 'already current'}")
        else:
            print(markdown_table(), end="")
        return 0
    print("methods:")
    for name in list_methods():
        spec = get_method(name)
        print(f"  {name:<20} [{', '.join(sorted(spec.scenarios))}] {spec.summary}")
    print("benchmarks:  " + ", ".join(benchmark_names()))
    print("sources:     " + ", ".join(source_names()))
    print("models:      " + ", ".join(model_names()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unlearnkit",
        description="Develop, score and submit machine-unlearning methods "
                    "(NeurIPS 2023 Machine Unlearning, Kaggle).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_local_eval(sub)
    add_leaderboard(sub)
    add_tune(sub)
    add_train_original(sub)
    add_list(sub)
    kaggle_commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as err:  # a venv made by `make local-eval` lacks the tools
        print(f"error: {err}; this command needs the kit's full environment: `make setup`, "
              "or `pip install unlearnkit` (its dependencies)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished models are cached; run the same command to resume.",
              file=sys.stderr)
        if argv is None:  # run as a program: leave now (torch's teardown takes a second or
            sys.stdout.flush()  # more); every cache entry and report is whole already
            sys.stderr.flush()
            os._exit(130)
        return 130
    except OSError as err:
        if err.errno is None:  # the kit's own FileNotFoundError(message)
            print(f"error: {err}", file=sys.stderr)
        else:
            print(f"error: {os_error_line(err)}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def os_error_line(err: OSError) -> str:
    """An operating-system error as one line: the path, what happened, what to do.
    Nothing is half-written: every file the kit writes goes through a temporary name."""
    import errno

    path = err.filename or "a file"
    fixes = {
        errno.ENOSPC: "free space on that disk, or point --cache / --out at another disk",
        errno.EDQUOT: "free space under your quota, or point --cache / --out elsewhere",
        errno.EROFS: "that filesystem is read-only: point --cache / --out at a writable folder",
        errno.EACCES: "make it writable for you, or point --cache / --out at a folder you own",
        errno.EPERM: "make it writable for you, or point --cache / --out at a folder you own",
        errno.ENOTDIR: "a file stands where a folder is needed: move it or choose another path",
        errno.EISDIR: "a folder stands where a file is needed: give a file name",
        errno.ENOENT: "check the path",
    }
    fix = fixes.get(err.errno, "check the path and run again")
    return (f"{path}: {err.strerror or type(err).__name__}; {fix} (nothing half-written "
            "was kept; the finished models are cached)")


if __name__ == "__main__":
    sys.exit(main())
