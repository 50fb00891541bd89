"""The budget plan: the card table, its checks, the projection's arithmetic, timed runs."""

from __future__ import annotations

import pytest
import torch

from unlearnkit.data.base import ImageSet
from unlearnkit.kaggle import plan as pl
from unlearnkit.kaggle.runtime import budget
from unlearnkit.kaggle.runtime.feed import Feed
from unlearnkit.methods import resolve_config
from unlearnkit.models import build_model


def test_card_names_and_scaling():
    assert budget.card_key("Tesla T4") == "t4" and budget.card_key("NVIDIA H200") == "h200"
    assert budget.card_key("Tesla P100-PCIE-16GB") == "p100" and budget.card_key("GTX 1080") is None
    t4, h200 = budget.CARDS["t4"].tflops, budget.CARDS["h200"].tflops
    assert budget.scale(2.0, h200, t4) == pytest.approx(2.0 * h200 / t4)
    line = budget.other_cards_line(1.0, 512, "h200")
    assert "Tesla T4 ~" in line and "P100" in line and "approximate" in line
    assert budget.other_cards_line(1.0, 512, None) is None  # an unknown card: nothing said
    with pytest.raises(ValueError, match="unknown card 'k80'"):
        budget.check_card("k80")


def test_bad_plan_options_are_refused_before_any_work():
    with pytest.raises(ValueError, match="--runs must be an integer in "):
        pl.check_plan("bad_teacher", "t4", 0, None)
    with pytest.raises(ValueError, match="unknown card"):
        pl.check_plan("bad_teacher", "k80", 3, None)
    with pytest.raises(ValueError, match="unknown method"):
        pl.check_plan("nope", "t4", 3, None)


def test_projection_scales_by_retain_size_and_throughput(monkeypatch):
    class Retain:
        def __len__(self):
            return 1000

    feed = Feed("device", {"retain": Retain()}, None, torch.device("cpu"), "test")
    monkeypatch.setattr(pl, "prepare", lambda *a, **k: (feed, None))
    monkeypatch.setattr(pl, "time_runs", lambda *a, **k: [9.0, 1.0, 1.2, 1.4])
    monkeypatch.setattr(pl, "device_throughput", lambda device: (0.5, "a CPU", "test"))
    out = pl.plan("bad_teacher", "t4", 4, retain_size=28000, progress=False)
    want = 1.2 * 28 * 0.5 / budget.CARDS["t4"].tflops  # median of the runs after the first
    assert out["per_run_s"] == pytest.approx(want) and out["total_s"] == pytest.approx(want * 512)
    text = "\n".join(out["lines"])
    assert "assumes:" in text and "28000 projected" in text and "under the budget" in text


def test_time_runs_times_each_notebook_run():
    g = torch.Generator().manual_seed(0)
    data = ImageSet(images=torch.randint(0, 256, (24, 3, 32, 32), generator=g).float(),
                    labels=torch.arange(24) % 3)
    fields = {"image": data.images, "age_group": data.labels, "person_id": torch.arange(24)}
    parts = {"retain": fields, "forget": {k: v[:6] for k, v in fields.items()},
             "validation": {k: v[6:12] for k, v in fields.items()}}
    feed = Feed("device", {}, parts, torch.device("cpu"), "test")
    net = build_model("small_cnn")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cfg = resolve_config("bad_teacher", {"batch_size": 8})
    seconds = pl.time_runs("bad_teacher", cfg, feed, net, runs=2)
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # original kept


def test_the_command_line_refuses_bad_options_with_a_message(capsys):
    from unlearnkit.cli import main

    assert main(["plan", "--method", "bad_teacher", "--runs", "0"]) == 2
    assert "--runs must be an integer in " in capsys.readouterr().err
    assert main(["plan", "--method", "bad_teacher", "--retain-size", "0"]) == 2
    assert "--retain-size must be an integer in " in capsys.readouterr().err
