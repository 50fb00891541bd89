"""Where the submission notebook reads and writes, what it runs on, and which method.

Everything here is decided and checked in the notebook's first cells, before any long
work: the folders (Kaggle's defaults, overridable by environment variables for local
runs), the device (a GPU is required on Kaggle; locally the CPU is allowed with a
warning) and the method with its hyperparameters (it must exist and serve the
competition's sample-level forget set). Inlined into the notebook, so it imports only
what Kaggle's image has.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

COMPETITION = "neurips-2023-machine-unlearning"
DEFAULT_INPUT_DIR = f"/kaggle/input/{COMPETITION}"
DEFAULT_WORK_DIR = "/kaggle/tmp"
ENV_INPUT_DIR = "UNLEARNKIT_INPUT_DIR"
ENV_WORK_DIR = "UNLEARNKIT_WORK_DIR"
ENV_OUTPUT_DIR = "UNLEARNKIT_OUTPUT_DIR"
ENV_NUM_CHECKPOINTS = "UNLEARNKIT_NUM_CHECKPOINTS"
HOW_TO_FIX = "edit the notebook's first cell, or rebuild it with build-notebook {option}"


def _whole(value) -> bool:
    """True for an integer (``bool`` excluded, as ``True`` is not a count)."""
    return isinstance(value, int) and not isinstance(value, bool)


MAX_CHECKPOINTS = 4096
"""More checkpoints than this is a typo: the competition scores 512 (45 MB each)."""
MAX_HOURS = 12.0
"""Kaggle's longest notebook session; a larger budget is never reached."""


def check_config(num_checkpoints, budget_hours, guard_after_runs) -> None:
    """Raise a one-line ``ValueError`` for an impossible value of the configuration cell.

    The one check of ``NUM_CHECKPOINTS`` (an integer >= 1), ``TIME_BUDGET_HOURS`` (a
    finite number > 0) and ``GUARD_AFTER_RUNS`` (an integer >= 1): the builder runs it
    before writing a notebook, the notebook again on its first cell (edited by hand on
    Kaggle), before any work.
    """
    if not _whole(num_checkpoints) or not 1 <= num_checkpoints <= MAX_CHECKPOINTS:
        raise ValueError(f"NUM_CHECKPOINTS = {num_checkpoints!r} is impossible: it must be an "
                         f"integer in [1, {MAX_CHECKPOINTS}] (the competition wants 512); "
                         + HOW_TO_FIX.format(option="--checkpoints N"))
    ok = isinstance(budget_hours, (int, float)) and not isinstance(budget_hours, bool)
    if not ok or not math.isfinite(budget_hours) or not 0 < budget_hours <= MAX_HOURS:
        raise ValueError(f"TIME_BUDGET_HOURS = {budget_hours!r} is impossible: it must be a "
                         f"number of hours in (0, {MAX_HOURS}] (Kaggle stops a notebook at "
                         f"8 h; 7.5 leaves a margin); "
                         + HOW_TO_FIX.format(option="--budget-hours H"))
    if not _whole(guard_after_runs) or not 1 <= guard_after_runs <= MAX_CHECKPOINTS:
        raise ValueError(f"GUARD_AFTER_RUNS = {guard_after_runs!r} is impossible: it must be an "
                         f"integer in [1, {MAX_CHECKPOINTS}] (the time guard's first projection comes after that "
                         f"many runs; 3 by default); "
                         + HOW_TO_FIX.format(option="--guard-after N"))


@dataclass(frozen=True)
class Settings:
    """The notebook's folders, number of checkpoints and time budget."""

    input_dir: Path
    """The competition's input folder (CSVs, images/, original_model.pth)."""
    work_dir: Path
    """Where ``unlearned_checkpoint_{i}.pth`` go (``/kaggle/tmp``: outside the output quota)."""
    output_dir: Path
    """Where ``submission.zip`` goes (the current directory: ``/kaggle/working`` on Kaggle)."""
    num_checkpoints: int
    """Unlearning runs, one checkpoint each (the competition wants 512)."""
    budget_s: float
    """Wall-time budget of the whole notebook, in seconds (Kaggle stops at 8 h)."""

    @classmethod
    def from_env(cls, num_checkpoints: int, budget_hours: float, environ: dict | None = None,
                 guard_after_runs: int = 3) -> Settings:
        """The notebook's configuration, checked (:func:`check_config`), overridden by
        ``UNLEARNKIT_*`` variables if set."""
        env = os.environ if environ is None else environ
        check_config(num_checkpoints, budget_hours, guard_after_runs)
        n = env.get(ENV_NUM_CHECKPOINTS, "").strip()
        if n:
            num_checkpoints = int(n) if n.lstrip("-").isdigit() else None
            if num_checkpoints is None or num_checkpoints < 1:
                what = "not an integer" if num_checkpoints is None else "below 1"
                raise ValueError(f"{ENV_NUM_CHECKPOINTS}={n!r} is {what}: it must be an integer "
                                 f">= 1; set it to one, or unset it to use NUM_CHECKPOINTS")
        return cls(
            input_dir=Path(env.get(ENV_INPUT_DIR) or DEFAULT_INPUT_DIR),
            work_dir=Path(env.get(ENV_WORK_DIR) or DEFAULT_WORK_DIR),
            output_dir=Path(env.get(ENV_OUTPUT_DIR) or "."),
            num_checkpoints=int(num_checkpoints),
            budget_s=float(budget_hours) * 3600.0,
        )

    @property
    def zip_path(self) -> Path:
        return self.output_dir / "submission.zip"

    @property
    def original_path(self) -> Path:
        return self.input_dir / "original_model.pth"  # data.competition_layout.MODEL_FILE

    @property
    def empty_run(self) -> bool:
        """True on Kaggle's public 'commit' run: ``empty.txt`` marks the empty input."""
        return (self.input_dir / "empty.txt").exists()


def on_kaggle(environ: dict | None = None) -> bool:
    """True inside a Kaggle session (its run-type variable, or its /kaggle/input folder)."""
    env = os.environ if environ is None else environ
    return bool(env.get("KAGGLE_KERNEL_RUN_TYPE")) or Path("/kaggle/input").is_dir()


def gpu_supported(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether a torch build compiled for ``arch_list`` runs on a GPU of ``capability``.

    It does when it has machine code for exactly that GPU (``sm_XY``) or PTX of an
    older or equal one (``compute_XY``) that the driver can compile. An empty list
    (a build that does not say) counts as supported.
    """
    if not arch_list:
        return True
    cap = capability[0] * 10 + capability[1]
    for arch in arch_list:
        kind, _, num = arch.partition("_")
        if not num.isdigit():
            continue
        if (kind == "sm" and int(num) == cap) or (kind == "compute" and int(num) <= cap):
            return True
    return False


def pick_device(kaggle: bool):
    """The CUDA device; on Kaggle without a usable GPU raise, elsewhere warn and use the CPU."""
    import torch

    if not torch.cuda.is_available():
        if kaggle:
            raise RuntimeError(
                "no GPU in this Kaggle session: 512 runs need one. In the notebook's settings "
                "choose Accelerator = GPU (P100 or T4), then run it again."
            )
        warnings.warn("no GPU found: running on the CPU (fine for a local test, far too slow "
                      "for 512 checkpoints)", stacklevel=2)
        return torch.device("cpu")
    cap = torch.cuda.get_device_capability(0)
    if not gpu_supported(cap, torch.cuda.get_arch_list()):
        raise RuntimeError(
            f"this torch build ({torch.__version__}; kernels for {torch.cuda.get_arch_list()}) "
            f"has no kernels for the {torch.cuda.get_device_name(0)} (sm_{cap[0]}{cap[1]}): "
            f"choose another accelerator (e.g. the T4) in the notebook's settings."
        )
    return torch.device("cuda")


def check_method(name: str, hyperparameters: dict):
    """``name``'s resolved config; raise unless it serves sample-level forgetting.

    The competition forgets the images of 15 people: a 'sample' scenario. Methods that
    only remove whole classes cannot serve it.
    """
    from unlearnkit.methods import check_serves, list_methods, resolve_config, serves

    if not isinstance(hyperparameters, dict):
        raise ValueError(f"HYPERPARAMETERS must be a dict, got {type(hyperparameters).__name__}")
    cfg = resolve_config(name, hyperparameters)  # an unknown name lists the valid ones
    if "sample" not in serves(name, cfg):
        usable = [m for m in list_methods() if "sample" in serves(m)]
        check_serves(name, cfg, "sample", where="the competition's forget set (the images of "
                     f"15 people; methods that serve it: {', '.join(usable)})")
    return cfg
