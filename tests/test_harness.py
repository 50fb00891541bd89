"""The local-eval pipeline end to end, on a tiny digits benchmark, through the real CLI."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import yaml
from tiny_bench import tiny_bench

from unlearnkit.benchmarks import load_benchmark
from unlearnkit.cli import main
from unlearnkit.harness import cache as cache_mod
from unlearnkit.harness import context, jobs
from unlearnkit.methods import _REGISTRY, MethodSpec
from unlearnkit.metrics.competition import forget_quality
from unlearnkit.train import predict_logits

TINY = tiny_bench(5)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One full run (every model trained once); tests start from a copy of its cache."""
    root = tmp_path_factory.mktemp("built")
    bench = root / "tiny.yaml"
    bench.write_text(yaml.safe_dump(TINY))
    assert run_cli(bench, root) == 0
    return root


@pytest.fixture()
def bench_file(built, tmp_path):
    """The tiny benchmark, with the built cache copied into this test's folder."""
    shutil.copytree(built / "cache", tmp_path / "cache")
    return built / "tiny.yaml"


def run_cli(bench_file, tmp_path, *extra, method="finetune", out="run"):
    argv = ["local-eval", "--bench", str(bench_file), "--method", method, "--quiet",
            "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / out), *extra]
    return main(argv)


class Counter:
    """Wraps jobs.run_job, counting jobs by kind."""

    def __init__(self, monkeypatch):
        self.kinds: list[str] = []
        real = jobs.run_job

        def counted(job):
            self.kinds.append(job.kind)
            return real(job)

        monkeypatch.setattr(jobs, "run_job", counted)


def test_end_to_end_report_matches_saved_confidences(built):
    out = built / "run"
    report = json.loads((out / "report.json").read_text())
    for key in ("benchmark", "method", "hyperparameters", "num_models", "forget_quality",
                "retain_acc_ratio", "test_acc_ratio", "score", "seconds_per_run",
                "retrain_seconds", "oracles"):
        assert key in report, key
    assert set(report["oracles"]) == {"retrain", "original"}
    assert report["num_models"] == 5
    z = np.load(out / "confidences.npz")
    assert z["unlearned_forget"].shape == z["retrained_forget"].shape
    assert z["unlearned_forget"].shape[0] == 5
    fq = forget_quality(z["unlearned_forget"], z["retrained_forget"])
    assert report["forget_quality"] == pytest.approx(fq.score, abs=0, rel=0)
    ratios = report["retain_acc_ratio"] * report["test_acc_ratio"]
    assert report["score"] == pytest.approx(fq.score * ratios)
    for name in ("report.md", "split.json", "epsilons.png", "worst_examples.png", "accuracies.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "epsilons.png").read_bytes()[:4] == b"\x89PNG"
    assert "| finetune |" in (out / "report.md").read_text()


def test_second_run_trains_nothing(built, bench_file, tmp_path, monkeypatch):
    counter = Counter(monkeypatch)
    assert run_cli(bench_file, tmp_path, out="again") == 0
    assert counter.kinds == []
    first = json.loads((built / "run" / "report.json").read_text())
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    assert again["score"] == first["score"]


def test_smaller_n_and_another_method_reuse_the_models(bench_file, tmp_path, monkeypatch):
    counter = Counter(monkeypatch)
    assert run_cli(bench_file, tmp_path, "--models", "4", "--set", "epochs=1",
                   method="random_label", out="rl") == 0
    assert counter.kinds == ["method"] * 4


def test_several_methods_end_with_one_side_by_side_table(bench_file, tmp_path, capsys):
    """finetune's runs are cached; temperature_only costs nothing: one table ranks both
    beside the oracles, best score first, with each method's share of a retrain."""
    assert run_cli(bench_file, tmp_path, method="finetune,temperature_only") == 0
    out = capsys.readouterr().out
    table = out[out.index("side by side on tiny, N = "):].splitlines()[1:]
    assert table[0].split() == ["models", "F", "score", "retain", "test", "forget", "of",
                                "a", "retrain"]
    names = [line.split()[0] for line in table[1:]]
    assert set(names[:2]) == {"finetune", "temperature_only"}
    assert names[2:] == ["oracle:", "oracle:", "references"]
    scores = [float(line.split()[4]) for line in table[1:3]]  # F [lo, hi] score ...
    assert scores == sorted(scores, reverse=True)
    assert all("%" in line for line in table[1:3])


def test_inline_jobs_reuse_the_prepared_context(bench_file, tmp_path, monkeypatch):
    """--workers 1: the jobs run on the pipeline's context, so the data is loaded once."""
    loads = []
    real = context.get_source
    monkeypatch.setattr(context, "get_source", lambda *a, **k: loads.append(a) or real(*a, **k))
    counter = Counter(monkeypatch)
    assert run_cli(bench_file, tmp_path, "--set", "epochs=1", method="random_label") == 0
    assert counter.kinds == ["method"] * 5
    assert len(loads) == 1


def test_resume_after_interruption(bench_file, tmp_path, monkeypatch):
    real = jobs.method_run
    calls = []

    def interrupt_second(ctx, job, device):
        calls.append(job.seeds[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(ctx, job, device)

    monkeypatch.setattr(jobs, "method_run", interrupt_second)
    assert run_cli(bench_file, tmp_path, "--set", "epochs=1", method="random_label") == 130
    monkeypatch.setattr(jobs, "method_run", real)
    counter = Counter(monkeypatch)
    assert run_cli(bench_file, tmp_path, "--set", "epochs=1", method="random_label") == 0
    assert counter.kinds == ["method"] * 4  # only the four runs not finished before


def test_fused_plan_trains_the_original_with_its_oracle(built, tmp_path, monkeypatch):
    """--fused 2: the original (seed 0) is one of the fused original jobs, not a job alone,
    and its checkpoint is the model whose outputs are cached."""
    seen = []
    real = jobs.run_job
    monkeypatch.setattr(jobs, "run_job", lambda job: seen.append(job) or real(job))
    assert run_cli(built / "tiny.yaml", tmp_path, "--fused", "2", out="fused") == 0
    originals = [job.seeds for job in seen if job.kind == context.ORIGINAL]
    assert originals == [(0, 1), (2, 3), (4, 5)]
    assert [job.seeds for job in seen if job.kind == context.RETRAIN][0] == (0,)  # timed alone
    ctx = context.prepare(load_benchmark(str(built / "tiny.yaml")), tmp_path / "cache")
    cached = cache_mod.load_outputs(ctx.model_path(context.ORIGINAL, context.ORIGINAL_SEED))
    net = jobs.load_original(ctx, "cpu")
    np.testing.assert_allclose(predict_logits(net, ctx.parts["forget"]), cached.forget_logits,
                               rtol=1e-5, atol=1e-5)


def test_corrupted_cache_entry_is_rebuilt(bench_file, tmp_path, monkeypatch):
    entries = sorted((tmp_path / "cache").glob("*/*/models/retrain/*.npz"))
    assert entries
    entries[1].write_bytes(b"not a zip file")
    counter = Counter(monkeypatch)
    assert run_cli(bench_file, tmp_path, out="again") == 0
    assert counter.kinds == ["retrain"]
    assert np.load(entries[1])["forget_logits"].ndim == 2


def test_failing_method_is_reported_and_exits_nonzero(bench_file, tmp_path, monkeypatch, capsys):
    finetune = _REGISTRY["finetune"]

    def explode(net, retain, forget, val, *, seed, **hp):
        if seed == 1:
            raise RuntimeError("boom on seed 1")
        return finetune.fn(net, retain, forget, val, seed=seed, **hp)

    monkeypatch.setitem(_REGISTRY, "explode",
                        dataclasses.replace(finetune, name="explode", fn=explode))
    assert isinstance(_REGISTRY["explode"], MethodSpec)
    assert run_cli(bench_file, tmp_path, method="explode") == 1
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert "boom on seed 1" in report["error"]
    assert "score" not in report
    assert "boom on seed 1" in capsys.readouterr().err


def test_unknown_names_list_the_valid_ones(tmp_path, capsys):
    assert main(["local-eval", "--bench", "nope", "--quiet"]) == 2
    assert "digits" in capsys.readouterr().err
    assert main(["local-eval", "--method", "nope", "--quiet"]) == 2
    assert "bad_teacher" in capsys.readouterr().err


def test_missing_cifar_data_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("UNLEARNKIT_DATA", raising=False)
    code = main(["local-eval", "--bench", "cifar10-cpu", "--method", "finetune", "--quiet",
                 "--data", str(tmp_path / "nowhere"), "--cache", str(tmp_path / "c")])
    assert code == 2
    err = capsys.readouterr().err
    assert "UNLEARNKIT_DATA" in err
