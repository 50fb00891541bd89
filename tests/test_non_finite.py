"""A method whose outputs are NaN or infinite (issue 30, principle 5): a failed row naming
the method and its setting, never a cache entry; through the real CLI on the tiny digits
benchmark (N = 4)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from tiny_bench import tiny_cli, write_tiny_bench

from unlearnkit.harness import cache as cache_mod
from unlearnkit.harness import jobs
from unlearnkit.methods import _REGISTRY, MethodConfig, register_method
from unlearnkit.metrics import intervals
from unlearnkit.params import param

NAME = "_test_diverges"


@dataclass
class DivergeConfig(MethodConfig):
    blowup: float = param(1.0, min=0)
    """What the weights are multiplied by before they become NaN (a stand-in setting)."""


@pytest.fixture(autouse=True)
def diverging_method(monkeypatch):
    """A registered method whose weights become NaN; a small bootstrap for the others."""
    monkeypatch.setattr(intervals, "RESAMPLES", 10)
    monkeypatch.setattr(intervals, "MODEL_DRAWS", 2)

    def diverge(net, retain_loader, forget_loader, val_loader, *, seed, cfg):
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(cfg.blowup).fill_(float("nan"))
        return net

    register_method(NAME, config=DivergeConfig, summary="test only")(diverge)
    yield
    _REGISTRY.pop(NAME, None)


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory):
    return write_tiny_bench(tmp_path_factory.mktemp("bench"))


_cli = tiny_cli


def _entries(root):
    return sorted((root / "cache").rglob(f"runs/{NAME}/*/*.npz"))


def test_nan_outputs_fail_their_row_are_not_cached_and_run_again(bench_file, tmp_path, capsys,
                                                                  monkeypatch):
    assert _cli("leaderboard", bench_file, tmp_path, "--methods", f"finetune,{NAME}",
                "--set", f"{NAME}.blowup=2", "--out", str(tmp_path / "lb")) == 1
    lb = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
    rows = {r["name"]: r for r in lb["rows"]}
    assert not rows["finetune"]["error"] and rows["finetune"]["score"] is not None
    err = rows[NAME]["error"]
    assert f"method {NAME} (blowup=2.0)" in err and "NaN or infinite" in err, err
    assert _entries(tmp_path) == []  # never cached
    capsys.readouterr()

    kinds = []
    real = jobs.run_job
    monkeypatch.setattr(jobs, "run_job", lambda job: kinds.append(job.kind) or real(job))
    assert _cli("local-eval", bench_file, tmp_path, "--method", NAME,
                "--out", str(tmp_path / "le")) == 1
    assert kinds == [jobs.METHOD] * 4  # run again (nothing was cached), nothing else trained
    failed = [line for line in capsys.readouterr().err.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and NAME in failed[0] and "NaN" in failed[0], failed
    assert _entries(tmp_path) == []


def test_the_cache_never_holds_non_finite_outputs(tmp_path):
    """Refused on the way in; an older kit's NaN entry is removed on the way out (so it is
    rebuilt, not scored)."""
    good = cache_mod.Outputs(np.zeros((3, 2)), np.zeros((4, 2)), np.zeros(5), {"seconds": 1.0})
    bad = cache_mod.Outputs(np.full((3, 2), np.nan), np.zeros((4, 2)), np.zeros(5), {})
    assert cache_mod.load_outputs(cache_mod.save_outputs(tmp_path / "good.npz", good))
    with pytest.raises(cache_mod.NonFinite, match="forget"):
        cache_mod.save_outputs(tmp_path / "bad.npz", bad)
    assert not (tmp_path / "bad.npz").exists()
    old = tmp_path / "old.npz"
    np.savez(old, forget_logits=np.zeros((3, 2)), test_logits=np.full((4, 2), np.inf),
             retain_pred=np.zeros(5), meta=np.array("{}"))
    notes = []
    assert cache_mod.load_outputs(old, note=notes.append) is None
    assert not old.exists() and "NaN or infinite" in notes[0]
