"""``unlearnkit score-submission``: a zip's checkpoints scored through the pipeline."""

from __future__ import annotations

import json
import zipfile

import pytest
import torch

from unlearnkit.cli import main
from unlearnkit.kaggle.mock import make_mock_competition
from unlearnkit.kaggle.runtime import checkpoints as ck
from unlearnkit.kaggle.score import read_states, summary_lines
from unlearnkit.models import build_model, save_checkpoint


def _zip(tmp_path, name: str, models: list[str], nan_at: int | None = None):
    """A submission zip holding a fresh network of each of ``models`` (checkpoint
    ``nan_at``'s weights NaN)."""
    work = tmp_path / f"work-{name}"
    zip_path = tmp_path / f"{name}.zip"
    with ck.SubmissionZip(zip_path) as sub:
        for i, model in enumerate(models):
            torch.manual_seed(i)
            net = build_model(model)
            if i == nan_at:
                with torch.no_grad():
                    for w in net.parameters():
                        w.fill_(float("nan"))
            sub.add(save_checkpoint(net, ck.checkpoint_path(work, i)))
        sub.finish(ck.expect_checkpoints(work, len(models)))
    return zip_path


def test_read_states_checks_the_zip(tmp_path):
    good = _zip(tmp_path, "good", ["resnet18"] * 5)
    assert len(read_states(good)) == 5 and len(read_states(good, models=4)) == 4
    for n in (3, 6):  # one minimum N (the bootstrap's 4), checked before any training
        with pytest.raises(ValueError, match="between 4 and the 5"):
            read_states(good, models=n)
    with pytest.raises(ValueError, match="holds 3 checkpoint.*at least 4"):
        read_states(_zip(tmp_path, "three", ["resnet18"] * 3))
    with pytest.raises(ValueError, match="does not fit"):
        read_states(_zip(tmp_path, "cnn", ["resnet18"] * 3 + ["small_cnn"]))
    ck.write_empty_zip(tmp_path / "empty.zip")
    with pytest.raises(ValueError, match="commit run"):
        read_states(tmp_path / "empty.zip")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "no checkpoints")
    with pytest.raises(ValueError, match="no unlearned_checkpoint"):
        read_states(tmp_path / "other.zip")


@pytest.mark.slow
def test_score_submission_through_the_pipeline(tmp_path, capsys):
    data = tmp_path / "input"
    make_mock_competition(data, "digits", epochs=0, imbalance=0.5, progress=False)
    too_few = _zip(tmp_path, "few", ["resnet18"] * 2)
    assert main(["score-submission", str(too_few), "--data", str(data), "--cache",
                 str(tmp_path / "cache"), "--quiet"]) == 2  # N >= 4: the metric's buckets
    four = _zip(tmp_path, "four", ["resnet18"] * 4)
    assert main(["score-submission", str(four), "--models", "3", "--data", str(data),
                 "--cache", str(tmp_path / "cache"), "--quiet"]) == 2
    assert not (tmp_path / "cache").exists()  # refused before any training
    nan = _zip(tmp_path, "nan", ["resnet18"] * 4, nan_at=2)
    assert main(["score-submission", str(nan), "--data", str(data), "--cache",
                 str(tmp_path / "cache"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unlearned_checkpoint_2.pth gave NaN or infinite outputs" in err, err
    assert not list((tmp_path / "cache").rglob("*.npz"))  # named before any training
    zip_path = _zip(tmp_path, "submission", ["resnet18"] * 4)
    out = tmp_path / "report.json"
    assert main(["score-submission", str(zip_path), "--data", str(data), "--cache",
                 str(tmp_path / "cache"), "--out", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert report["num_models"] == 4 and 0.0 <= report["score"] <= 1.0
    assert report["intervals"]["method"]["score"]["low"] <= report["score"]
    assert {"retrain", "original"} <= set(report["oracles"])
    assert report["benchmark_config"]["train"]["epochs"] == 0  # the mock's own recipe
    lines = summary_lines(report)
    low, high = (report["intervals"]["method"]["score"][k] for k in ("low", "high"))
    assert f"score {report['score']:.4f} [{low:.4f}, {high:.4f}]" in lines[1]
    assert "original oracle (no unlearning)" in lines[-1]
