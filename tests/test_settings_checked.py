"""Issue 30, principle 3: every setting from every source is checked before any work, and
the one-line message names the field, the value and the file.

Through the real command line; reading any data fails the test, so each case is fast.
"""

from __future__ import annotations

import pytest
import yaml
from cli_checks import refused
from tiny_bench import tiny_bench

from unlearnkit.assignments import parse_value
from unlearnkit.benchmarks import benchmark_from_dict
from unlearnkit.harness import context
from unlearnkit.harness.pipeline import check_request
from unlearnkit.train import TrainConfig


@pytest.fixture(autouse=True)
def no_data(monkeypatch):
    monkeypatch.setattr(context, "get_source", lambda *a, **k: pytest.fail("data was read"))



def local_eval(tmp_path, bench, *extra) -> list[str]:
    return ["local-eval", "--bench", str(bench), "--method", "finetune", "--quiet",
            "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"), *extra]


def bench_file(tmp_path, text: str):
    path = tmp_path / "b.yaml"
    path.write_text(text)
    return path


def with_train(**train) -> str:
    raw = tiny_bench(4)
    raw["train"].update(train)
    return yaml.safe_dump(raw)


@pytest.mark.parametrize("text,words", [
    (with_train(epochs=-1), ["train.epochs = -1", "[0, inf)"]),
    (with_train(epochs=0), ["train.epochs = 0", "trains nothing", ">= 1"]),
    (with_train(lr="fast"), ["train.lr = 'fast' must be a number"]),
    (with_train(lr=0), ["train.lr = 0", "(0, inf)"]),
    (with_train(batch_size=2.5), ["train.batch_size = 2.5 must be an integer"]),
    (with_train(momentum=0.9), ["momentum", "valid: epochs"]),
    ("", ["is empty", "mapping of field: value"]),
    ("- digits\n- cifar10\n", ["holds a list", "not a mapping"]),
    ("source: digits\ntrain: {epochs: 1\nmodel: x\n", ["line 3 column 6", "malformed YAML"]),
    ("source: digits\nnum_models: many\n", ["num_models = 'many' must be an integer"]),
    ("source: digits\ntrain: 5\n", ["train = 5 must be a mapping"]),
    ("source: digits\nmethod_overrides: {finetune: 3}\n", ["method_overrides"]),
])
def test_a_bad_benchmark_yaml_names_file_field_and_value(tmp_path, capsys, text, words):
    path = bench_file(tmp_path, text)
    refused(capsys, local_eval(tmp_path, path), str(path), *words)
    assert not (tmp_path / "cache").exists()


def test_the_shipped_benchmarks_and_the_tiny_one_pass():
    from unlearnkit.benchmarks import benchmark_names, load_benchmark

    for name in benchmark_names():
        assert load_benchmark(name).train.epochs >= 1
    assert benchmark_from_dict({**tiny_bench(4), "name": "t"}).train.epochs == 1


def test_train_config_checks_itself_in_code_too():
    with pytest.raises(ValueError, match="train.lr = -1"):
        TrainConfig(lr=-1)
    assert TrainConfig(epochs=0).epochs == 0  # an untrained model: tests and rehearsals


def test_a_malformed_config_names_file_line_and_column(tmp_path, capsys):
    bench = bench_file(tmp_path, yaml.safe_dump(tiny_bench(4)))
    cfg = tmp_path / "best.yaml"
    cfg.write_text("lr: 0.01\nepochs: [1\n")
    refused(capsys, local_eval(tmp_path, bench, "--config", str(cfg)), str(cfg), "line 3",
            "malformed YAML")
    cfg.write_text("- lr\n")
    refused(capsys, local_eval(tmp_path, bench, "--config", str(cfg)), str(cfg),
            "holds a list")


def test_a_config_of_another_method_names_the_file(tmp_path, capsys):
    bench = bench_file(tmp_path, yaml.safe_dump(tiny_bench(4)))
    cfg = tmp_path / "unsir.yaml"
    cfg.write_text("impair_lr: 0.001\n")
    refused(capsys, local_eval(tmp_path, bench, "--config", str(cfg)), str(cfg), "impair_lr")


def test_mixture_shares_in_yaml_syntax_are_honoured():
    shares = parse_value("{finetune: 0.5, random_label: 0.5}")
    assert shares == {"finetune": 0.5, "random_label": 0.5}
    bench = benchmark_from_dict({**tiny_bench(4), "name": "t"})
    cfg = check_request(bench, ["mixture"], {"shares": shares})["mixture"]
    assert cfg.shares == shares
    with pytest.raises(ValueError, match="neither a Python literal nor YAML"):
        parse_value("{finetune: [}")
