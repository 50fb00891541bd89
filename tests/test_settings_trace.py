"""One settings trace: each value of a method's config with the layer that set it, in
`unlearnkit list METHOD --bench B` and in local-eval's report.json; --fused K honoured."""

from __future__ import annotations

import json

import pytest
import yaml
from tiny_bench import tiny_bench

from unlearnkit import fused_training
from unlearnkit.benchmarks import load_benchmark
from unlearnkit.cli import main
from unlearnkit.method_settings import method_settings


@pytest.fixture()
def layered(tmp_path):
    """A benchmark that overrides finetune's epochs and lr, and a --config that overrides lr
    and momentum."""
    raw = tiny_bench(4)
    raw["method_overrides"] = {"finetune": {"epochs": 2, "lr": 0.01}}
    bench = tmp_path / "tiny.yaml"
    bench.write_text(yaml.safe_dump(raw))
    config = tmp_path / "best.yaml"
    config.write_text("lr: 0.02\nmomentum: 0.5\n")
    return bench, config


def test_each_value_names_its_layer(layered):
    bench, config = layered
    s = method_settings("finetune", load_benchmark(str(bench)), config, {"momentum": 0.8})
    assert s.config.epochs == 2 and s.config.lr == 0.02 and s.config.momentum == 0.8
    assert s.sources["epochs"] == "benchmark tiny: method_overrides"
    assert s.sources["lr"] == f"--config {config}"
    assert s.sources["momentum"] == "--set"
    assert s.sources["weight_decay"] == "default"
    assert [row["field"] for row in s.trace()] == s.config.field_names()


def test_without_a_benchmark_only_defaults_and_yaml():
    s = method_settings("finetune")
    assert set(s.sources.values()) <= {"default", "configs/methods/finetune.yaml"}


def test_list_prints_the_trace(layered, capsys):
    bench, config = layered
    assert main(["list", "finetune", "--bench", str(bench), "--config", str(config),
                 "--set", "momentum=0.8"]) == 0
    out = capsys.readouterr().out
    assert "epochs = 2   from benchmark tiny: method_overrides" in out
    assert f"lr = 0.02   from --config {config}" in out
    assert "momentum = 0.8   from --set" in out
    assert "weight_decay = 0.0005   from default" in out


def test_list_refuses_settings_without_a_method(capsys):
    assert main(["list", "--bench", "digits"]) == 2
    assert "go with a METHOD" in capsys.readouterr().err


def test_report_holds_the_trace_and_fused_k_is_honoured(layered, tmp_path, monkeypatch):
    """local-eval --fused 3: every fused job trains its 3 models as one chunk (not the
    CPU's default 2), and report.json holds the settings trace."""
    bench, config = layered
    chunks = []
    real = fused_training.train_many

    def spy(*args, chunk=None, **kwargs):
        chunks.append((len(args[2]), chunk))
        return real(*args, chunk=chunk, **kwargs)

    monkeypatch.setattr(fused_training, "train_many", spy)
    assert main(["local-eval", "--bench", str(bench), "--method", "finetune", "--quiet",
                 "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
                 "--fused", "3", "--config", str(config), "--set", "momentum=0.8"]) == 0
    assert (3, 3) in chunks and all(n == k for n, k in chunks)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    trace = {row["field"]: row for row in report["settings"]}
    assert trace["epochs"] == {"field": "epochs", "value": 2,
                               "source": "benchmark tiny: method_overrides"}
    assert trace["momentum"]["source"] == "--set"
    assert report["hyperparameters"]["lr"] == trace["lr"]["value"] == 0.02
