"""Score a ``submission.zip`` with the competition metric, on a competition-layout folder.

The checkpoints are read from the zip by file name (``unlearned_checkpoint_{i}.pth`` in
any folder of it), each checked to be a ``resnet18(num_classes=10)`` state_dict, and
handed to the pipeline (:func:`unlearnkit.harness.pipeline.evaluate_states`), which retrains
the references on the folder's retain set (cached as for ``local-eval``) and scores
them with the scoring core (:mod:`unlearnkit.harness.scoring_core`) against the held-out
``test.csv``. The number of checkpoints is checked (at least ``MIN_MODELS``) before
any training. A folder made by ``mock-competition`` carries
its training recipe in ``mock.json``; the references are trained with that recipe,
else with the scorer's.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch

from unlearnkit.harness.scoring_core import MIN_MODELS
from unlearnkit.models import build_model, load_state

from .mock import MOCK_FILE
from .runtime.checkpoints import zip_checkpoint_members


class ZipStates(Sequence):
    """The checkpoints of a submission zip as a sequence of state_dicts, read on access.

    512 resnet18 checkpoints take 23 GB: they are read from the zip one at a time, when
    the pipeline asks for them, never all held at once.
    """

    def __init__(self, zip_path: Path, members: list[str]):
        self.zip_path, self.members = zip_path, members

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, i: int) -> dict:
        name = self.members[i]
        expected = ("expected a state_dict saved with torch.save(net.state_dict(), path) from "
                    "the competition's resnet18")
        try:
            with zipfile.ZipFile(self.zip_path) as zf:
                data = zf.read(name)
        except (zipfile.BadZipFile, OSError, EOFError) as err:  # a damaged member (bad CRC)
            raise ValueError(f"{self.zip_path}:{name} cannot be read ({_reason(err)}); the zip "
                             f"is damaged: write it again") from None
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as err:  # not a torch file, truncated, or a pickled object
            raise ValueError(f"{self.zip_path}:{name} is not a torch checkpoint "
                             f"({_reason(err)}); {expected}") from None
        if not isinstance(state, dict):
            raise ValueError(f"{self.zip_path}:{name} holds a {type(state).__name__}, not a "
                             f"state_dict; {expected}")
        return state


def _reason(err: BaseException) -> str:
    """The first line of an error, short (torch.load's run to a page)."""
    text = str(err).strip()
    if "Weights only load failed" in text:
        return "it holds pickled Python objects, not only tensors: was the whole model saved?"
    text = text.splitlines()[0] if text else type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def read_states(zip_path: str | os.PathLike, models: int | None = None) -> ZipStates:
    """The first ``models`` checkpoints (all by default) of a submission zip, each checked
    now to be a ``resnet18(num_classes=10)`` state_dict, before any long work."""
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise FileNotFoundError(f"submission not found: {zip_path}")
    members = zip_checkpoint_members(zip_path)
    if not members:
        raise ValueError(f"{zip_path} holds no unlearned_checkpoint_*.pth (an empty zip is the "
                         f"output of Kaggle's commit run, not a submission)")
    if sorted(members) != list(range(len(members))):
        raise ValueError(f"{zip_path}: checkpoints are not numbered 0..{len(members) - 1}")
    n = len(members) if models is None else models
    if len(members) < MIN_MODELS:
        raise ValueError(f"{zip_path} holds {len(members)} checkpoint(s): scoring needs at "
                         f"least {MIN_MODELS} (the metric's buckets and the bootstrap's model "
                         "draws); write a submission with more checkpoints")
    if not MIN_MODELS <= n <= len(members):
        raise ValueError(f"--models must be between {MIN_MODELS} and the {len(members)} "
                         f"checkpoints in {zip_path}, got {n}")
    states = ZipStates(zip_path, [members[i] for i in range(n)])
    net = build_model("resnet18")  # the competition's architecture
    for i in range(n):
        load_state(net, states[i], source=f"{zip_path.name}:{states.members[i]}")
    return states


def folder_benchmark(data_dir: str | os.PathLike):
    """The ``competition`` benchmark for ``data_dir``: its own cache key, its mock recipe."""
    from unlearnkit.benchmarks import load_benchmark
    from unlearnkit.train import TrainConfig

    data_dir = Path(data_dir)
    if not (data_dir / "test.csv").is_file():
        raise FileNotFoundError(f"{data_dir / 'test.csv'} not found: scoring needs a held-out "
                                f"test set (a folder written by `unlearnkit mock-competition`)")
    mock = {}
    if (data_dir / MOCK_FILE).is_file():
        mock = json.loads((data_dir / MOCK_FILE).read_text())
    digest = hashlib.sha256()
    for name in ("retain.csv", "forget.csv", "validation.csv", "test.csv", MOCK_FILE):
        if (data_dir / name).is_file():
            digest.update((data_dir / name).read_bytes())
    return load_benchmark("competition", name=f"competition-{digest.hexdigest()[:10]}",
                          model=mock.get("model"),
                          train=TrainConfig.from_dict(mock["train"]) if "train" in mock else None)


def check_folder(data_dir: str | os.PathLike) -> None:
    """Every CSV of the folder (cells included) and every image file listed, before any work."""
    from unlearnkit.data.competition import folder_num_classes
    from unlearnkit.data.competition_layout import SPLITS, image_files, read_table

    data_dir = Path(data_dir)
    for split in (*SPLITS, "test"):
        image_files(data_dir, read_table(data_dir, split, folder_num_classes(data_dir)), split)


def score_submission(zip_path: str | os.PathLike, data_dir: str | os.PathLike, *,
                     models: int | None = None, device: str | None = None, workers: int = 1,
                     cache_dir: str | None = None, progress: bool = True) -> dict:
    """The report's numbers (JSON-ready) for the submission's checkpoints on ``data_dir``."""
    from unlearnkit.harness.pipeline import Plan, evaluate_states

    bench = folder_benchmark(data_dir)
    check_folder(data_dir)
    states = read_states(zip_path, models)
    plan = Plan(device=device or ("cuda" if torch.cuda.is_available() else "cpu"),
                workers=workers, cache_dir=cache_dir, data_root=str(data_dir), progress=progress)
    return evaluate_states(bench, states, plan, label="submission").to_json()


def summary_lines(report: dict) -> list[str]:
    """A few lines a person reads: the score beside both oracles, each with its 95%
    interval, and the verdict against doing nothing."""
    from unlearnkit.report import with_interval

    oracles, iv = report.get("oracles", {}), report.get("intervals", {})
    method = iv.get("method", {})
    lines = [
        f"submission: {report['num_models']} checkpoints on {report['benchmark']}",
        f"  score {with_interval(report['score'], method.get('score'))}  "
        f"forget quality {with_interval(report['forget_quality'], method.get('forget_quality'))}"
        f"  retain acc ratio {report['retain_acc_ratio']:.3f}  "
        f"test acc ratio {report['test_acc_ratio']:.3f}",
    ]
    for name in ("retrain", "original"):
        if name in oracles:
            o, oi = oracles[name], iv.get(f"oracle_{name}", {})
            lines.append(f"  oracle {name:<8} score {with_interval(o['score'], oi.get('score'))}"
                         f"  forget quality "
                         f"{with_interval(o['forget_quality'], oi.get('forget_quality'))}")
    if "distinguishable_from_original" in method:
        verdict = ("distinguishable from" if method["distinguishable_from_original"]
                   else "not distinguishable from")
        lines.append(f"  at 95%, the submission is {verdict} the original oracle (no unlearning)")
    return lines

