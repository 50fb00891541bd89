"""``unlearnkit tune`` through the real CLI, on a tiny digits benchmark (N = 4, 1 epoch)."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass

import pytest
import yaml

from unlearnkit.cli import config_overrides, main
from unlearnkit.harness import tune
from unlearnkit.methods import _REGISTRY, MethodConfig, register_method, resolve_config
from unlearnkit.params import Space, param

TINY = {
    "source": "digits", "source_options": {"views": 1}, "scenario": "random:0.1",
    "model": "small_cnn", "num_models": 4, "train": {"epochs": 1, "lr": 1e-3},
}
FAST = ["--method", "finetune", "--set", "max_steps=2", "--space", "lr=1e-3:1e-1:log",
        "--space", "epochs=1:2", "--time-fraction", "50"]


@pytest.fixture(scope="module", autouse=True)
def small_bootstrap():
    """Few resamples for the final intervals: the tests check the plumbing, not them."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tune, "RESAMPLES", 10)
        mp.setattr(tune, "MODEL_DRAWS", 2)
        yield


def run(root, *extra, trials=3, out="out", storage="study.db"):
    bench = root / "tiny.yaml"
    if not bench.exists():
        bench.write_text(yaml.safe_dump(TINY))
    return main(["tune", "--bench", str(bench), "--quiet", "--cache", str(root / "cache"),
                 "--storage", f"sqlite:///{root / storage}", "--out", str(root / out),
                 "--trials", str(trials), *extra])


def summary(root, out="out") -> dict:
    return json.loads((root / out / "summary.json").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A 3-trial study of finetune (references built on the way)."""
    root = tmp_path_factory.mktemp("tune")
    assert run(root, *FAST) == 0
    return root


@pytest.fixture()
def copy(built, tmp_path):
    """The built cache and study, copied for a test that changes them."""
    shutil.copytree(built / "cache", tmp_path / "cache")
    shutil.copy(built / "study.db", tmp_path / "study.db")
    shutil.copy(built / "tiny.yaml", tmp_path / "tiny.yaml")
    return tmp_path


def test_a_study_writes_a_best_yaml_that_local_eval_reads(built):
    s = summary(built)
    assert s["trials"]["total"] == 3 and s["trials"]["complete"] == 3
    best_file = built / "out" / "best.yaml"
    cfg = resolve_config("finetune", config_overrides("finetune", str(best_file)))
    assert cfg.to_dict() == {**s["best"]["hyperparameters"], "progress": False}
    assert 1e-3 <= cfg.lr <= 1e-1 and cfg.max_steps == 2
    rows = list(csv.DictReader((built / "out" / "trials.csv").open()))
    assert len(rows) == 3
    assert max(float(r["value"]) for r in rows) == pytest.approx(s["best"]["value"])
    assert rows[0]["params_lr"] == "0.001"  # the first trial is the defaults (finetune's lr)
    r = s["rescored"]
    for where in ("tuning", "held_out"):
        row = r[where]["tuned"]["score"]
        assert row["low"] <= row["value"] <= row["high"]
    assert r["tuning"]["tuned"]["score"]["value"] == pytest.approx(s["best"]["value"])
    assert r["held_out"]["tuned"]["score"]["value"] != r["tuning"]["tuned"]["score"]["value"]
    assert (built / "out" / "history.png").stat().st_size > 0
    report = (built / "out" / "report.md").read_text()
    assert "Held out" in report and "--config best.yaml" in report


def test_a_rerun_runs_only_the_missing_trials(copy):
    assert run(copy, *FAST, trials=5) == 0
    s = summary(copy)
    assert s["trials"]["total"] == 5 and s["trials"]["ran_now"] == 2
    assert run(copy, *FAST, trials=5, out="again") == 0
    assert summary(copy, "again")["trials"] == {**s["trials"], "ran_now": 0}


def test_a_study_made_for_another_method_is_refused(copy, capsys):
    code = run(copy, "--method", "random_label", "--study", "tiny-finetune")
    assert code == 2
    assert "made for another setting" in capsys.readouterr().err


def test_bad_spaces_and_storage_are_refused_before_any_work(tmp_path, capsys):
    cases = [(["--space", "nope=1:2"], "has no field 'nope'"),
             (["--space", "lr=0:0.1"], "narrow it"),
             (["--space", "momentum=0.5:1.5"], "narrow it"),
             (["--space", "lr=0.1"], "expected NAME=LOW:HIGH"),
             (["--space", "lr=1e-3:1e-1", "--set", "lr=0.01"], "both to --space and --set"),
             (["--address", "127.0.0.1:1"], "add --executor ray")]
    for extra, message in cases:
        assert run(tmp_path, "--method", "finetune", *extra) == 2, extra
        assert message in capsys.readouterr().err, extra
    (tmp_path / "file").write_text("x")
    for url, message in (("nope://x", "cannot open the study storage"),
                         (f"sqlite:///{tmp_path}/file/s.db", "is a file, not a folder")):
        bench = tmp_path / "tiny.yaml"
        code = main(["tune", "--bench", str(bench), "--method", "finetune", "--quiet",
                     "--cache", str(tmp_path / "cache"), "--storage", url])
        assert code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_a_trial_over_the_time_rule_is_pruned(copy, capsys):
    code = run(copy, *FAST[:-2], "--time-fraction", "1e-6", "--study", "fast", trials=2,
               out="pruned")
    assert code == 1  # nothing completed
    s = summary(copy, "pruned")
    assert s["trials"]["pruned"] == 2 and s["best"] is None
    rows = list(csv.DictReader((copy / "pruned" / "trials.csv").open()))
    assert all("over the time rule" in r["user_attrs_pruned"] for r in rows)
    assert "No trial completed" in (copy / "pruned" / "report.md").read_text()


@dataclass
class FlakyConfig(MethodConfig):
    x: float = param(0.5, min=0, max=1, search=Space(0.1, 0.9))
    """A number the method ignores."""


@pytest.fixture()
def flaky():
    """A method that raises on its 6th call: the second trial's first (each trial runs it
    once untimed before its 4 timed runs, jobs.warm_up_method)."""
    calls = []

    def method(net, retain_loader, forget_loader, val_loader, *, seed, cfg):
        calls.append(seed)
        if len(calls) == 6:
            raise RuntimeError("boom on purpose")
        return net

    register_method("_test_flaky", config=FlakyConfig, summary="test only")(method)
    yield "_test_flaky"
    _REGISTRY.pop("_test_flaky", None)


def test_a_trial_that_raises_is_recorded_and_the_study_goes_on(copy, flaky):
    assert run(copy, "--method", flaky, "--time-fraction", "50", "--study", "flaky",
               out="flaky") == 0
    s = summary(copy, "flaky")
    assert s["trials"] == {"total": 3, "ran_now": 3, "complete": 2, "fail": 1}
    rows = list(csv.DictReader((copy / "flaky" / "trials.csv").open()))
    failed = [r for r in rows if r["state"] == "FAIL"]
    assert len(failed) == 1 and "boom on purpose" in failed[0]["user_attrs_error"]
    assert failed[0]["number"] == "1"


def test_local_eval_config_must_exist(tmp_path, capsys):
    assert main(["local-eval", "--method", "finetune", "--quiet", "--cache", str(tmp_path),
                 "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "method config not found" in capsys.readouterr().err


def test_space_items_for_choices_and_integers():
    from unlearnkit.harness import tune_space
    from unlearnkit.methods import get_method

    cls = get_method("perturb_finetune").config
    name, space = tune_space.parse_item(cls, f"scope={cls().scope}")
    assert name == "scope" and space.choices == (cls().scope,)
    with pytest.raises(ValueError, match="not accepted"):
        tune_space.parse_item(cls, "scope=nowhere")
    with pytest.raises(ValueError, match="whole ends"):
        tune_space.parse_item(cls, "epochs=1.5:3")
    with pytest.raises(ValueError, match="log scale"):
        tune_space.parse_item(cls, "weight_decay=0:1e-3:log")
    assert tune_space.parse_item(cls, "lr=1e-4:1e-2:log")[1] == Space(1e-4, 1e-2, log=True)


def test_text_and_true_false_fields_are_searched_as_choices():
    from unlearnkit.harness import tune_space
    from unlearnkit.methods import get_method

    cls = get_method("retrain_head_tuned").config
    assert tune_space.parse_item(cls, "noise_from=first,layer3")[1].choices == ("first", "layer3")
    assert tune_space.parse_item(cls, "match_unseen=true,false")[1].choices == (True, False)
    with pytest.raises(ValueError, match="not accepted"):
        tune_space.parse_item(cls, "noise_from=first,3")
    with pytest.raises(ValueError, match="not accepted"):
        tune_space.parse_item(cls, "match_unseen=true,maybe")


# ---------------------------------------------------------------- the study's accounting


def _study(tmp_path, heartbeat: bool = False):
    import optuna

    url = f"sqlite:///{tmp_path / 'acc.db'}"
    storage = (optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
               if heartbeat else url)
    return optuna.create_study(study_name="acc", storage=storage, direction="maximize")


def test_only_finished_trials_count(tmp_path):
    from optuna.trial import TrialState

    study = _study(tmp_path)
    study.enqueue_trial({"x": 1})  # waiting
    study.ask()  # running (this process, or a dead one)
    assert tune.counted(study) == 0
    study.tell(study.ask(), state=TrialState.PRUNED)
    study.tell(study.ask(), 0.5)
    failed = study.ask()
    failed.set_user_attr("error", "RuntimeError: boom")
    study.tell(failed, state=TrialState.FAIL)
    study.tell(study.ask(), state=TrialState.FAIL)  # interrupted: no error of its own
    assert tune.counted(study) == 3


def test_a_dead_running_trial_is_failed_over(tmp_path):
    import time

    from optuna.trial import TrialState

    study = _study(tmp_path, heartbeat=True)
    trial = study.ask()
    study._storage.record_heartbeat(trial._trial_id)
    time.sleep(2.2)  # past its 1 s grace
    tune.fail_stale(study)
    assert study.trials[0].state == TrialState.FAIL


def test_the_defaults_are_queued_again_after_an_interruption(tmp_path):
    from optuna.trial import TrialState

    study = _study(tmp_path)
    tune.enqueue_defaults(study, {"x": 0.5})
    tune.enqueue_defaults(study, {"x": 0.5})  # waiting already: not twice
    assert [t.state for t in study.trials] == [TrialState.WAITING]
    study.tell(study.ask(), state=TrialState.FAIL)  # Ctrl-C during the defaults
    tune.enqueue_defaults(study, {"x": 0.5})
    assert study.trials[-1].state == TrialState.WAITING
    assert study.trials[-1].user_attrs["defaults"] is True
    study.tell(study.ask(), 0.1)
    tune.enqueue_defaults(study, {"x": 0.5})  # scored once: not again
    assert len(study.trials) == 2


def test_ctrl_c_in_the_defaults_trial_is_one_line_and_the_rerun_scores_them(copy, capsys,
                                                                            monkeypatch):
    real = tune.Objective._score

    def interrupt(self, trial):
        raise KeyboardInterrupt

    monkeypatch.setattr(tune.Objective, "_score", interrupt)
    assert run(copy, *FAST, "--study", "fresh", trials=1, out="fresh") == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted") and "\n" not in err and "Traceback" not in err, err
    monkeypatch.setattr(tune.Objective, "_score", real)
    assert run(copy, *FAST, "--study", "fresh", trials=1, out="fresh") == 0
    s = summary(copy, "fresh")
    assert s["trials"]["complete"] == 1 and s["trials"]["fail"] == 1
    rows = list(csv.DictReader((copy / "fresh" / "trials.csv").open()))
    done = [r for r in rows if r["state"] == "COMPLETE"]
    assert done[0]["user_attrs_defaults"] == "True"


def test_defaults_outside_a_searched_range_are_not_queued_as_defaults(tmp_path, capsys):
    study = _study(tmp_path)
    inside = {"x": Space(0.1, 0.9)}
    assert tune.queue_defaults_if_inside(study, FlakyConfig(), inside)
    assert len(study.trials) == 1 and study.trials[0].user_attrs["defaults"] is True
    (tmp_path / "b").mkdir()
    other = _study(tmp_path / "b")
    assert not tune.queue_defaults_if_inside(other, FlakyConfig(), {"x": Space(0.6, 0.9)})
    assert other.trials == []
    assert "x=0.5 lie outside the searched ranges" in capsys.readouterr().err
