"""The ResNet-18 benchmark's path end to end in seconds: its own YAML, shrunk, through the CLI.

``cifar10-groups-resnet18`` as shipped (the competition's network, recipe shape and
persons scenario) with only sizes cut: a fake CIFAR-10 image folder of a few images per
class, one epoch, N = 4. What is checked is that the path runs and is what it says
(torchvision's resnet18 with the ImageNet stem, test frames of training persons), not
the benchmark's numbers, which docs/benchmarks.md measures.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import yaml
from test_data_sources import make_image_folder

from unlearnkit.benchmarks import load_benchmark
from unlearnkit.cli import main
from unlearnkit.models import build_model

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")


def fake_cifar(root, per_class=8):
    """A CIFAR-10 image folder with ``per_class`` random PNGs per class (and 1 in test)."""
    return make_image_folder(root, classes=CLASSES, n_train=per_class, n_test=1)


def shrunk_bench(tmp_path) -> str:
    """The shipped benchmark with its sizes cut to seconds, as a YAML file."""
    bench = load_benchmark("cifar10-groups-resnet18")
    raw = bench.to_dict()
    raw.update(name="r18-smoke", num_models=4,
               source_options={**bench.source_options, "train_per_class": 8},
               scenario="persons:0.1",
               method_overrides={"finetune": {"epochs": 1}})
    raw["train"] = {**raw["train"], "epochs": 1}
    path = tmp_path / "r18-smoke.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_the_shipped_benchmark_is_the_competitions_setting():
    bench = load_benchmark("cifar10-groups-resnet18")
    assert bench.model == "resnet18" and bench.scenario.startswith("persons:")
    assert bench.source_options["held_out_views"] >= 1, "test frames of the training persons"
    cfg = bench.train
    assert (cfg.batch_size, cfg.class_weighted, cfg.cosine) == (64, True, True)
    assert cfg.weight_decay > 0
    net = build_model(bench.model, 10)
    assert net.conv1.kernel_size == (7, 7) and net.conv1.stride == (2, 2), "ImageNet stem"
    assert net.fc.out_features == 10
    assert replace(bench, num_models=4).key() == bench.key(), "N does not change the models"


@pytest.mark.slow
def test_resnet18_benchmark_runs_end_to_end(tmp_path):
    data = fake_cifar(tmp_path / "cifar")
    bench = shrunk_bench(tmp_path)
    code = main(["local-eval", "--bench", bench, "--method", "finetune", "--quiet",
                 "--data", str(data), "--cache", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "run")])
    assert code == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    text = json.dumps(report)
    assert "resnet18" in text
    scores = [v for k, v in _numbers(report) if k.endswith("score")]
    assert scores and all(math.isfinite(s) for s in scores)


def _numbers(obj, prefix=""):
    """(dotted key, value) for every number in a nested report."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix, obj
