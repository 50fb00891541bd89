"""The scoring core: every command scores through it, so they agree; through the real CLI
on the tiny digits benchmark (N = 4), with a small bootstrap (the plumbing, not the
intervals' width, is under test)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_bench import tiny_cli, write_tiny_bench

from unlearnkit.metrics import intervals


@pytest.fixture(autouse=True)
def small_bootstrap(monkeypatch):
    monkeypatch.setattr(intervals, "RESAMPLES", 10)
    monkeypatch.setattr(intervals, "MODEL_DRAWS", 2)


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory):
    return write_tiny_bench(tmp_path_factory.mktemp("bench"))


_cli = tiny_cli


@pytest.mark.parametrize("command,extra", [
    ("local-eval", ["--method", "finetune"]),
    ("leaderboard", ["--methods", "finetune"]),
    ("tune", ["--method", "finetune", "--trials", "1"]),
])
def test_too_few_models_are_refused_before_any_training(command, extra, bench_file, tmp_path,
                                                       capsys):
    """One minimum N (the bootstrap's 4) in every command, checked before the first job."""
    storage = ["--storage", f"sqlite:///{tmp_path / 's.db'}"] if command == "tune" else []
    assert _cli(command, bench_file, tmp_path, "--models", "3", *extra, *storage,
                "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "N = 3" in err and "--models 4" in err, err
    assert not (tmp_path / "cache").exists()


def test_leaderboard_and_local_eval_give_one_answer(bench_file, tmp_path):
    """The same cache scored by local-eval and by the leaderboard: the same exact numbers
    and the same run time, the mean of the runs timed alone (with --workers 2 only the
    first run is; the others ran two at once)."""
    assert _cli("local-eval", bench_file, tmp_path, "--method", "finetune", "--workers", "2",
                "--out", str(tmp_path / "le")) == 0
    report = json.loads((tmp_path / "le" / "report.json").read_text())
    assert report["timing"]["method_runs_timed"] == 1
    assert _cli("leaderboard", bench_file, tmp_path, "--methods", "finetune,random_label",
                "--set", "random_label.max_steps=3", "--workers", "2",
                "--out", str(tmp_path / "lb")) == 0
    lb = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
    rows = {r["name"]: r for r in lb["rows"]}
    ft = rows["finetune"]
    assert ft["score"]["value"] == report["score"]
    assert ft["forget_quality"]["value"] == report["forget_quality"]
    assert ft["seconds_per_run"] == report["seconds_per_run"]
    assert ft["time_fraction_of_retrain"] == report["time_fraction_of_retrain"]
    assert lb["retrain_seconds"] == report["retrain_seconds"]
    runs = sorted((tmp_path / "cache").rglob("runs/finetune/*/*.npz"))
    seconds = [json.loads(str(np.load(p)["meta"]))["seconds"] for p in runs]  # seed 0 first
    assert ft["seconds_per_run"] == seconds[0] != sum(seconds) / len(seconds)
    for name in ("retrain", "original"):
        assert rows[f"oracle_{name}"]["score"]["value"] == report["oracles"][name]["score"]
    # each set draws from its own stream: the same intervals beside one set or two
    iv = report["intervals"]
    for key in ("forget_quality", "score", "fraction_of_retrain_oracle",
                "minus_original_oracle"):
        assert ft[key] == iv["method"][key], key
    for name in ("oracle_retrain", "oracle_original"):
        assert rows[name]["score"] == iv[name]["score"]
        assert rows[name]["forget_quality"] == iv[name]["forget_quality"]
    assert lb["oracle_gap"] == iv["oracle_gap"]


def _set(rng, n, shift=0.0):
    s = 30  # forget examples
    return intervals.ModelSet(rng.normal(shift, 1.0, (n, s)), np.full(n, 0.9), np.full(n, 0.9))


def test_a_sets_draws_do_not_depend_on_the_other_sets():
    """Principle 7: the oracles' draws are identical with and without extra method sets,
    in any order; a set's draws follow its name, not its place."""
    rng = np.random.default_rng(0)
    refs, retrain, original = _set(rng, 6), _set(rng, 6), _set(rng, 6, 0.5)
    a, b = _set(rng, 6, 0.2), _set(rng, 6, 1.0)
    kw = {"resamples": 20, "model_draws": 4, "seed": 3}
    alone = intervals.bootstrap({"oracle_retrain": retrain, "oracle_original": original},
                                refs, **kw)
    crowded = intervals.bootstrap({"b": b, "oracle_original": original, "a": a,
                                   "oracle_retrain": retrain}, refs, **kw)
    for name in alone:
        np.testing.assert_array_equal(alone[name].score, crowded[name].score)
        np.testing.assert_array_equal(alone[name].forget_quality, crowded[name].forget_quality)
    renamed = intervals.bootstrap({"c": a}, refs, **kw)
    assert not np.array_equal(renamed["c"].score, crowded["a"].score)  # keyed by the name
    again = intervals.bootstrap({"a": a}, refs, **kw)
    np.testing.assert_array_equal(again["a"].score, crowded["a"].score)
