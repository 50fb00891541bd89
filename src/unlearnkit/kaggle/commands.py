"""The Kaggle subcommands of ``unlearnkit``: parse, call, print.

``mock-competition``, ``score-submission``, ``build-notebook``, ``kaggle-local``,
``submit`` and ``plan``; the main command line adds them with ``register(subparsers)``.
"""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    """Add the Kaggle subcommands to an ``argparse`` subparsers object."""
    add_mock(sub)
    add_score(sub)
    add_build(sub)
    add_local(sub)
    add_submit(sub)
    add_plan(sub)


def add_mock(sub) -> None:
    p = sub.add_parser("mock-competition", help="write a mock competition input folder",
                       description="Write a folder in the competition's layout (CSVs, images/, "
                       "original_model.pth, plus test.csv and mock.json) to rehearse the notebook.")
    p.add_argument("--source", choices=["digits", "cifar10"], default="digits")
    p.add_argument("--out", required=True, help="the folder to write")
    p.add_argument("--root", help="data root of the source (cifar10; else $UNLEARNKIT_DATA)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="resnet18", help="original model (default: resnet18)")
    p.add_argument("--epochs", type=int, help="original model's epochs (default: the scorer's 30)")
    p.add_argument("--forget-fraction", type=float, default=0.02)
    p.add_argument("--imbalance", type=float, default=0.7,
                   help="class c keeps imbalance**c of its persons (default 0.7)")
    p.add_argument("--views", type=int, help="views (images) per person (default 3)")
    p.add_argument("--train-per-class", type=int, help="cifar10: base images per class")
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_mock)


def cmd_mock(args) -> int:
    from .mock import MOCK_FILE, check_options, make_mock_competition

    check_options(args.source, seed=args.seed, model=args.model, epochs=args.epochs,
                  forget_fraction=args.forget_fraction, imbalance=args.imbalance,
                  views=args.views, train_per_class=args.train_per_class, min_epochs=1)
    from ..cli import device_of
    from ..paths import check_paths

    if Path(args.out).exists() and not args.overwrite:
        raise ValueError(f"{args.out} already exists; pass --overwrite or choose another folder")
    if Path(args.out).exists() and not (Path(args.out) / MOCK_FILE).is_file():
        raise ValueError(f"{args.out} is not a mock competition (it holds no {MOCK_FILE}); "
                         "--overwrite replaces only the kit's own mocks: choose another --out")
    check_paths(data=args.root if args.source == "cifar10" else False)
    check_paths(out_dir=None if Path(args.out).exists() else args.out)
    device_of(args.device)
    info = make_mock_competition(
        args.out, args.source, root=args.root, seed=args.seed, model=args.model,
        epochs=args.epochs, forget_fraction=args.forget_fraction, imbalance=args.imbalance,
        views=args.views, train_per_class=args.train_per_class, device=args.device,
        overwrite=args.overwrite, progress=not args.quiet)
    acc = info["original_accuracy"]
    print(f"wrote {args.out}: {info['sizes']}, {info['forget_persons']} forget persons; "
          f"original {info['model']} train acc {acc['train']:.4f}, test acc {acc['test']:.4f}")
    return 0


def add_score(sub) -> None:
    p = sub.add_parser("score-submission", help="score a submission.zip on a mock competition",
                       description="Score the checkpoints of a submission.zip with the "
                       "competition metric against retrained references on --data.")
    p.add_argument("zip", help="the submission.zip")
    p.add_argument("--data", required=True, help="the competition-layout folder (with test.csv)")
    p.add_argument("--models", type=int, help="use the first N checkpoints (default: all)")
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--workers", type=int, default=1, help="training jobs run at once")
    p.add_argument("--cache", help="cache folder (else $UNLEARNKIT_CACHE or data/cache)")
    p.add_argument("--out", help="also write the report (JSON) here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_score)


def cmd_score(args) -> int:
    from unlearnkit.atomic import write_json

    from ..cli import device_of
    from ..paths import check_paths, is_json_object
    from .score import score_submission, summary_lines

    check_paths(inputs={"the zip": args.zip}, data=args.data, cache=args.cache,
                out_file=args.out, keep_file=is_json_object)
    device_of(args.device)
    report = score_submission(args.zip, args.data, models=args.models, device=args.device,
                              workers=args.workers, cache_dir=args.cache,
                              progress=not args.quiet)
    print("\n".join(summary_lines(report)))
    if args.out:
        write_json(args.out, {k: v for k, v in report.items() if not k.startswith("_")})
        print(f"report: {args.out}")
    return 0


def _config_arguments(p) -> None:
    """``--method`` and ``--set`` (shared by build-notebook and submit)."""
    p.add_argument("--method", help="the method written into the configuration cell")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="a hyperparameter written into the configuration cell (repeatable)")


def add_build(sub) -> None:
    p = sub.add_parser("build-notebook", help="build the self-contained submission notebook",
                       description="Build notebooks/submission.ipynb from notebooks/submission.py "
                       "with the kit inlined.")
    _config_arguments(p)
    p.add_argument("--checkpoints", type=int, help="NUM_CHECKPOINTS (default 512)")
    p.add_argument("--budget-hours", type=float, help="TIME_BUDGET_HOURS (default 7.5)")
    p.add_argument("--guard-after", type=int, help="GUARD_AFTER_RUNS (default 3)")
    p.add_argument("--loader", choices=["device", "contract"],
                   help="LOADER (default device: batches indexed on the GPU)")
    p.add_argument("--source", help="the jupytext source (default notebooks/submission.py)")
    p.add_argument("--out", help="the notebook to write (default notebooks/submission.ipynb)")
    p.add_argument("--script", help="also write the code cells as one Python script here")
    p.set_defaults(func=cmd_build)


def cmd_build(args) -> int:
    from unlearnkit.atomic import write_text

    from ..assignments import parse_assignments
    from ..paths import check_paths
    from .notebook import build_notebook, to_script

    check_paths(out_file=args.out)
    check_paths(out_file=args.script, out_option="--script")
    out = build_notebook(args.source and Path(args.source), args.out and Path(args.out),
                         method=args.method, hyperparameters=parse_assignments(args.set) or None,
                         num_checkpoints=args.checkpoints, budget_hours=args.budget_hours,
                         guard_after_runs=args.guard_after, loader=args.loader)
    print(f"wrote {out}")
    if args.script:
        print(f"wrote {write_text(args.script, to_script(out))}")
    return 0


def add_local(sub) -> None:
    p = sub.add_parser("kaggle-local", help="rehearse the Kaggle loop here: mock data, the "
                       "notebook run headless, its score",
                       description="Write a mock competition (reused when present), build and "
                       "run the notebook headless on it, and score its submission.zip against "
                       "retrained references. Writes <out>/input, <out>/work, "
                       "<out>/output/submission.zip, <out>/executed.ipynb and <out>/report.json.")
    p.add_argument("--out", default="runs/kaggle-local", help="working folder "
                   "(default runs/kaggle-local)")
    p.add_argument("--source", choices=["digits", "cifar10"], default="digits")
    p.add_argument("--root", help="data root (cifar10; else $UNLEARNKIT_DATA)")
    p.add_argument("--checkpoints", type=int, default=4, help="notebook runs (default 4)")
    p.add_argument("--epochs", type=int, default=2,
                   help="epochs of the original and reference models (default 2: CPU-sized)")
    p.add_argument("--method", help="method (default: the notebook's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a hyperparameter override (repeatable)")
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_local)


def cmd_local(args) -> int:
    import sys

    from ..assignments import parse_assignments
    from .local import NotebookFailed, kaggle_local
    from .score import summary_lines

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


def add_submit(sub) -> None:
    p = sub.add_parser("submit", help="push the notebook to Kaggle, wait, submit its output",
                       description="Build the notebook, push it as a private GPU kernel with the "
                       "internet off, wait for it to finish, and submit its submission.zip.")
    _config_arguments(p)
    p.add_argument("--slug", default="unlearnkit-submission", help="the kernel's slug")
    p.add_argument("--title", help="the kernel's title (default: the slug, words spaced)")
    p.add_argument("--message", "-m", default="unlearnkit submission", help="submission message")
    p.add_argument("--user", help="Kaggle user name (default $KAGGLE_USERNAME or kaggle.json)")
    p.add_argument("--accelerator", default="NvidiaTeslaP100",
                   help="machine_shape of the kernel (default NvidiaTeslaP100)")
    p.add_argument("--dir", help="the kernel folder (default submissions/<slug>)")
    p.add_argument("--timeout", type=float, default=9 * 3600,
                   help="seconds to wait for the kernel (default 9 h)")
    p.add_argument("--poll", type=float, default=60, help="seconds between status checks")
    p.add_argument("--no-wait", action="store_true",
                   help="push only: do not wait for the kernel nor submit")
    p.set_defaults(func=cmd_submit)


def cmd_submit(args) -> int:
    from ..assignments import parse_assignments
    from .submit import SubmitOptions, submit

    opts = SubmitOptions(slug=args.slug, title=args.title, message=args.message, user=args.user,
                         accelerator=args.accelerator, folder=args.dir, timeout_s=args.timeout,
                         poll_s=args.poll, wait=not args.no_wait)
    result = submit(opts, method=args.method, hyperparameters=parse_assignments(args.set) or None)
    print(json.dumps(result, indent=2))
    return 0


def add_plan(sub) -> None:
    p = sub.add_parser("plan", help="time a method's runs here and project 512 on a card",
                       description="Time a few notebook runs of a method on this machine's "
                       "device and project the total for 512 runs on the named card.")
    p.add_argument("--method", required=True)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="a hyperparameter override (repeatable)")
    p.add_argument("--gpu", default="t4", choices=["p100", "t4", "v100", "a100", "h100", "h200",
                                                    "cpu"], help="the card to project onto")
    p.add_argument("--runs", type=int, default=3, help="runs to time (default 3; the first "
                   "is a warm-up)")
    p.add_argument("--input", help="a competition folder (default: a small digits mock)")
    p.add_argument("--loader", choices=["device", "contract"], default="device")
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--retain-size", type=int, default=28_000,
                   help="retain images to project to (default 28000, the competition's)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_plan)


def cmd_plan(args) -> int:
    from ..assignments import parse_assignments
    from ..cli import device_of
    from ..paths import check_paths
    from .plan import check_retain_size, plan

    check_retain_size(args.retain_size)
    check_paths(data=args.input or False)
    device_of(args.device)
    result = plan(args.method, args.gpu, args.runs, input_dir=args.input and Path(args.input),
                  hyperparameters=parse_assignments(args.set) or None, loader=args.loader,
                  device=args.device, retain_size=args.retain_size, progress=not args.quiet)
    print("\n".join(result["lines"]))
    return 0
