"""``unlearnkit plan``: time a few runs of a method here, project 512 of them onto a card.

The runs are the notebook's own loop (:func:`time_runs`): the original copied from
memory, the run's loaders from the notebook's feed (device or contract loaders),
:func:`~unlearnkit.methods.run_method`, and the weights copied to the CPU for the
checkpoint writer. They run on this machine's device over a competition folder: the one
given, else a small digits mock written to a temporary folder. The median time per run
(the first, warm-up run left out when there are more) is then

1. scaled to the competition's retain set (``retain_size``, 28k images by default), in
   proportion to the number of retain images: a run's cost is mostly passes over them;
2. rescaled from this device to the named card by the ratio of FP32 throughputs:
   the card table's spec-sheet peaks (:mod:`unlearnkit.kaggle.runtime.budget`) for a
   known GPU, and for a CPU (or an unknown GPU) a throughput measured here with a
   matrix product, which a spec-sheet peak overstates: a projection from a CPU is an
   order of magnitude, not a forecast;
3. multiplied by the number of runs and judged by the time guard's own
   :class:`~unlearnkit.kaggle.runtime.guard.Projection` against the budget.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch

from .runtime import budget
from .runtime.guard import Projection

COMPETITION_RETAIN = 28_000
"""About how many retain images the competition's hidden data has (the issue's 28k)."""
DEFAULT_BUDGET_HOURS = 7.5


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_runs(method: str, cfg, feed, original: torch.nn.Module, runs: int,
              first_seed: int = 0) -> list[float]:
    """Seconds of each of ``runs`` notebook runs (seeds ``first_seed``, ...)."""
    from unlearnkit.methods import run_method

    seconds = []
    for seed in range(first_seed, first_seed + runs):
        sync(feed.device)
        start = time.perf_counter()
        net = copy.deepcopy(original)
        retain, forget, val = feed.loaders(seed)
        run_method(method, net, retain, forget, val, seed=seed, cfg=cfg, scenario_kind="sample")
        {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}  # the writer's copy
        sync(feed.device)
        seconds.append(time.perf_counter() - start)
    return seconds


def typical(seconds: list[float]) -> float:
    """The median time per run, the first (warm-up) run left out when there are more."""
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def measured_tflops(device: torch.device, n: int = 1024, min_s: float = 0.5) -> float:
    """FP32 TFLOPS of ``n`` x ``n`` matrix products on ``device``, measured for ``min_s``."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    sync(device)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_s:
        a @ b
        reps += 1
        if reps % 4 == 0:
            sync(device)
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e12


def device_throughput(device: torch.device) -> tuple[float, str, str]:
    """``(tflops, what the device is, where the number comes from)``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        key = budget.card_key(name)
        if key is not None:
            card = budget.CARDS[key]
            return card.tflops, name, f"spec sheet ({card.source})"
        return measured_tflops(device), name, "measured here: FP32 matrix products"
    return measured_tflops(device), f"the CPU, {torch.get_num_threads()} threads", \
        "measured here: FP32 matrix products"


MAX_RUNS = 100  # timing more runs than this only takes longer
MAX_RETAIN = 1_000_000  # the competition's retain set has 28k images


def check_retain_size(retain_size) -> None:
    """``--retain-size``: the retain images to project to, within reason."""
    if isinstance(retain_size, bool) or not isinstance(retain_size, int) \
            or not 1 <= retain_size <= MAX_RETAIN:
        raise ValueError(f"--retain-size must be an integer in [1, {MAX_RETAIN}] (the "
                         f"competition's retain set: {COMPETITION_RETAIN}), got {retain_size!r}")


def check_plan(method: str, gpu: str, runs, hyperparameters: dict | None):
    """The method's config; a one-line ``ValueError`` for a bad option, before any work."""
    from .runtime.settings import check_method

    if gpu != "cpu":
        budget.check_card(gpu)
    if not isinstance(runs, int) or isinstance(runs, bool) or not 1 <= runs <= MAX_RUNS:
        raise ValueError(f"--runs must be an integer in [1, {MAX_RUNS}] (2 or more: the first "
                         f"is a warm-up; a few are enough to time), got {runs!r}")
    return check_method(method, hyperparameters or {})


def prepare(folder: Path, make_mock: bool, loader: str, device: torch.device, progress: bool):
    """``(feed, original)``: the notebook's data and model from ``folder`` (first written
    there as a small digits mock with an untrained original when ``make_mock``)."""
    from unlearnkit.models import load_checkpoint

    from .runtime import dataset as ds
    from .runtime.feed import choose_feed

    if make_mock:
        from .mock import make_mock_competition

        make_mock_competition(folder, "digits", epochs=0, progress=progress)
    tables = ds.validate_input(folder, folder / "original_model.pth")
    feed = choose_feed(ds.load_datasets(tables, progress), device, loader)
    original = load_checkpoint(folder / "original_model.pth", "resnet18").to(device)
    return feed, original


def plan(method: str, gpu: str = "t4", runs: int = 3, *, input_dir=None,
         hyperparameters: dict | None = None, loader: str = "device", device=None,
         retain_size: int = COMPETITION_RETAIN, num_runs: int = 512,
         budget_hours: float = DEFAULT_BUDGET_HOURS, progress: bool = True) -> dict:
    """Measure, project and explain (see the module docstring); return the numbers and lines."""
    cfg = check_plan(method, gpu, runs, hyperparameters)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    with tempfile.TemporaryDirectory(prefix="unlearnkit-plan-") as tmp:
        folder = Path(input_dir) if input_dir is not None else Path(tmp) / "mock"
        feed, original = prepare(folder, input_dir is None, loader, device, progress)
        seconds = time_runs(method, cfg, feed, original, runs)
    here_tflops, here_name, here_source = device_throughput(device)
    if gpu == "cpu":
        target_tflops, target_name, target_source = (
            (here_tflops, here_name, here_source) if device.type == "cpu"
            else (measured_tflops(torch.device("cpu")), "this machine's CPU", "measured here"))
    else:
        card = budget.CARDS[gpu]
        target_tflops, target_name, target_source = card.tflops, card.name, card.source
    n_retain = len(feed.datasets["retain"])
    per_run_here = typical(seconds) * retain_size / n_retain
    per_run = budget.scale(per_run_here, here_tflops, target_tflops)
    verdict = Projection(runs_done=0, runs_total=num_runs, elapsed_s=0.0,
                         seconds_per_run=per_run, budget_s=budget_hours * 3600)
    lines = [
        f"measured: {runs} run(s) of {method} on {here_name}, {feed.kind} loaders, "
        f"{'a small digits mock' if input_dir is None else folder} ({n_retain} retain images): {', '.join(f'{s:.2f}' for s in seconds)} s; typical "
        f"{typical(seconds):.2f} s per run",
        f"this device: {here_tflops:.2f} TFLOPS FP32 ({here_source})",
        f"target: {target_name}: {target_tflops:.2f} TFLOPS FP32 ({target_source}; approximate)",
        f"projection: {per_run:.2f} s per run on the target, {num_runs} runs "
        f"{per_run * num_runs / 3600:.2f} h; as the time guard puts it: {verdict.message()}",
        f"assumes: a run's time grows in proportion to the retain set ({n_retain} measured, "
        f"{retain_size} projected) and to 1/FP32 throughput (compute-bound; ignores memory "
        f"bandwidth, TF32 tensor cores on A100 and newer, a T4's power limit); decoding the "
        f"images and loading the notebook (a minute or two) are not included",
    ]
    return {"method": method, "gpu": gpu, "seconds": seconds, "retain_measured": n_retain,
            "retain_size": retain_size, "here_tflops": here_tflops, "target_tflops": target_tflops,
            "per_run_s": per_run, "total_s": per_run * num_runs, "loader": feed.kind,
            "lines": lines}
