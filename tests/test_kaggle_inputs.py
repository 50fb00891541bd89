"""The notebook's contract pieces: settings, bad inputs, dict items, loaders, the zip."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

from unlearnkit.kaggle.mock import MOCK_FILE, make_mock_competition
from unlearnkit.kaggle.runtime import checkpoints as ck
from unlearnkit.kaggle.runtime import dataset as ds
from unlearnkit.kaggle.runtime.settings import Settings, check_method, gpu_supported, on_kaggle
from unlearnkit.models import build_model, save_checkpoint


@pytest.fixture(scope="module")
def mock_dir(tmp_path_factory):
    """A small digits mock with an untrained original (the contract, not accuracy, is tested)."""
    out = tmp_path_factory.mktemp("mock") / "input"
    make_mock_competition(out, "digits", epochs=0, imbalance=0.5, progress=False)
    return out



def test_mock_is_competition_like(mock_dir):
    info = json.loads((mock_dir / MOCK_FILE).read_text())
    counts = info["class_counts_train"]
    assert counts[0] == max(counts) and counts[0] > 4 * counts[-1]  # imbalanced, 0 commonest
    train = info["sizes"]["retain"] + info["sizes"]["forget"]
    assert 0.01 <= info["sizes"]["forget"] / train <= 0.04
    assert sum(info["class_counts_forget"][2:]) == 0  # forget: classes 0 and 1 only
    retain = pd.read_csv(mock_dir / "retain.csv")
    forget = pd.read_csv(mock_dir / "forget.csv")
    assert not set(retain.person_id) & set(forget.person_id)  # whole persons
    for name in ("retain.csv", "forget.csv", "validation.csv", "test.csv", "original_model.pth"):
        assert (mock_dir / name).is_file()


def test_settings_from_env(tmp_path):
    env = {"UNLEARNKIT_INPUT_DIR": str(tmp_path), "UNLEARNKIT_WORK_DIR": "/w",
           "UNLEARNKIT_OUTPUT_DIR": "/o", "UNLEARNKIT_NUM_CHECKPOINTS": "3"}
    s = Settings.from_env(512, 7.5, env)
    assert (s.input_dir, str(s.work_dir), str(s.zip_path)) == (tmp_path, "/w", "/o/submission.zip")
    assert s.num_checkpoints == 3 and s.budget_s == 27000
    d = Settings.from_env(512, 7.5, {})
    assert str(d.input_dir) == "/kaggle/input/neurips-2023-machine-unlearning"
    assert str(d.work_dir) == "/kaggle/tmp" and d.num_checkpoints == 512
    with pytest.raises(ValueError, match="not an integer"):
        Settings.from_env(512, 7.5, {"UNLEARNKIT_NUM_CHECKPOINTS": "many"})
    assert not s.empty_run
    (tmp_path / "empty.txt").write_text("")
    assert s.empty_run


def test_on_kaggle_and_gpu_support():
    assert on_kaggle({"KAGGLE_KERNEL_RUN_TYPE": "Batch"})
    assert gpu_supported((7, 5), ["sm_75", "sm_80"])
    assert not gpu_supported((6, 0), ["sm_75", "sm_80", "sm_90"])  # a P100 on a new build
    assert gpu_supported((10, 0), ["sm_90", "compute_90"])  # PTX compiles forward
    assert gpu_supported((6, 0), [])


def test_method_checks():
    assert check_method("finetune", {}).lr > 0
    with pytest.raises(ValueError, match="unknown method"):
        check_method("nope", {})
    with pytest.raises(ValueError, match="sample-level"):
        check_method("linear_filtration", {})
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        check_method("finetune", {"lrr": 1})


def test_valid_input_passes(mock_dir):
    tables = ds.validate_input(mock_dir, mock_dir / "original_model.pth")
    assert set(tables) == {"retain", "forget", "validation"}


def test_missing_csv(copy_of):
    (copy_of / "forget.csv").unlink()
    with pytest.raises(FileNotFoundError, match="forget.csv"):
        ds.validate_input(copy_of, copy_of / "original_model.pth")


def test_missing_column(copy_of):
    pd.read_csv(copy_of / "retain.csv").drop(columns="age").to_csv(copy_of / "retain.csv")
    with pytest.raises(ValueError, match="lacks column"):
        ds.validate_input(copy_of, copy_of / "original_model.pth")


def test_missing_image(copy_of):
    first = pd.read_csv(copy_of / "validation.csv").image_id[0]
    ds.image_path(copy_of, first).unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        ds.validate_input(copy_of, copy_of / "original_model.pth")


def test_original_of_another_architecture(copy_of):
    save_checkpoint(build_model("small_cnn"), copy_of / "original_model.pth")
    with pytest.raises(ValueError, match="does not fit"):
        ds.validate_input(copy_of, copy_of / "original_model.pth")
    (copy_of / "original_model.pth").unlink()
    with pytest.raises(FileNotFoundError, match="original_model.pth"):
        ds.validate_input(copy_of, copy_of / "original_model.pth")


def test_items_and_fresh_loaders(mock_dir):
    tables = ds.validate_input(mock_dir, mock_dir / "original_model.pth")
    data = ds.load_datasets(tables, progress=False)
    item = data["forget"][0]
    assert set(item) == {"image", "image_id", "age_group", "age", "person_id"}
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 32, 32)
    assert item["image"].max() > 1  # raw 0-255, not normalised
    retain, forget, val = ds.make_loaders(data, seed=1)
    assert retain.batch_size == 64
    batch = next(iter(retain))
    assert batch["image"].shape[1:] == (3, 32, 32) and batch["age_group"].dtype == torch.int64
    ids = lambda s: [b["image_id"] for b in ds.make_loaders(data, seed=s)[0]]  # noqa: E731
    assert ids(1) == ids(1) and ids(1) != ids(2)  # shuffled, by the run's seed alone


def test_submission_zip(tmp_path):
    work = tmp_path / "work"
    net = build_model("resnet18")
    with ck.SubmissionZip(tmp_path / "out" / "submission.zip") as sub:
        for i in range(2):
            sub.add(save_checkpoint(net, ck.checkpoint_path(work, i)))
        sub.finish(ck.expect_checkpoints(work, 2))
    zip_path = tmp_path / "out" / "submission.zip"
    names = zipfile.ZipFile(zip_path).namelist()
    assert names == [ck.zip_member_name(work / f"unlearned_checkpoint_{i}.pth") for i in range(2)]
    assert not names[0].startswith("/") and names[0].endswith("work/unlearned_checkpoint_0.pth")
    assert ck.zip_checkpoint_members(zip_path) == {0: names[0], 1: names[1]}
    with pytest.raises(RuntimeError, match="expected exactly 3"):
        ck.expect_checkpoints(work, 3)


def test_unfinished_zip_leaves_nothing(tmp_path):
    zip_path = tmp_path / "submission.zip"
    with pytest.raises(RuntimeError, match="expected 1"):
        with ck.SubmissionZip(zip_path) as sub:
            sub.finish([tmp_path / "unlearned_checkpoint_0.pth"])
    assert list(tmp_path.iterdir()) == []


def test_clear_and_empty_zip(tmp_path):
    for i in range(3):
        (tmp_path / f"unlearned_checkpoint_{i}.pth").write_bytes(b"x")
    (tmp_path / "keep.txt").write_text("")
    assert ck.clear_checkpoints(tmp_path) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    ck.write_empty_zip(tmp_path / "submission.zip")
    assert (tmp_path / "submission.zip").stat().st_size == 0
    assert ck.zip_checkpoint_members(tmp_path / "submission.zip") == {}


def test_image_ids():
    assert ds.image_path(np.str_("/x"), "12-3").as_posix().endswith("images/12/3.png")
    with pytest.raises(ValueError, match="<person>-<n>"):
        ds.image_path("/x", "123")


def test_local_env_paths_are_absolute(tmp_path, monkeypatch):
    from unlearnkit.kaggle.local import notebook_env

    monkeypatch.chdir(tmp_path)
    env = notebook_env("in", "work", "out", 3)
    assert env["UNLEARNKIT_INPUT_DIR"] == str(tmp_path / "in")
    assert env["UNLEARNKIT_NUM_CHECKPOINTS"] == "3"
