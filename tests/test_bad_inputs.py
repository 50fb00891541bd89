"""Bad input, fed through the real command line, ends in one clear line and exit code 2.

Every case checks: exit code 2, a single ``error: ...`` line on stderr naming the file,
field or value and what to do, no traceback, and nothing half-written left behind.
The CSV and image cases run on a private copy of the shared mock competition.
"""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from unlearnkit.cli import main
from unlearnkit.data.competition_layout import image_path
from unlearnkit.kaggle.runtime import dataset as ds
from unlearnkit.kaggle.runtime.settings import Settings, check_config


def fails(capsys, argv: list[str]) -> str:
    """Run the CLI, expecting exit code 2 and one error line; return that line."""
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, f"exit code {code}; stderr: {captured.err}"
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    assert err.startswith("error: ") and "\n" not in err, err
    return err



def set_cell(folder: Path, split: str, row: int, column: str, value) -> str:
    """Write ``value`` into one cell of ``<split>.csv``; return the row's image_id."""
    path = folder / f"{split}.csv"
    table = pd.read_csv(path, dtype={"image_id": str}).astype({column: object})
    table.loc[row, column] = value
    table.to_csv(path, index=False)
    return table.loc[row, "image_id"]


def score_args(folder: Path, tmp_path: Path) -> list[str]:
    """score-submission on ``folder`` with a zip that the folder's checks come before."""
    zip_path = tmp_path / "submission.zip"
    zip_path.write_bytes(b"never read: the folder is checked first")
    return ["score-submission", str(zip_path), "--data", str(folder), "--cache",
            str(tmp_path / "cache"), "--quiet"]


# --- data sources: the competition CSVs -------------------------------------------------

@pytest.mark.parametrize("split", ["retain", "forget", "validation", "test"])
@pytest.mark.parametrize("column,value,shown", [
    ("age_group", math.nan, "age_group is empty (NaN)"),
    ("age_group", 1.5, "age_group is 1.5"),
    ("age_group", 10, "age_group is 10"),
    ("age_group", -1, "age_group is -1"),
    ("age_group", "young", "age_group is 'young'"),
    ("person_id", math.nan, "person_id is empty (NaN)"),
    ("person_id", "p7", "person_id is 'p7'"),
])
def test_bad_csv_cell_is_refused_with_file_line_and_column(copy_of, tmp_path, capsys, split,
                                                            column, value, shown):
    image_id = set_cell(copy_of, split, 2, column, value)
    err = fails(capsys, score_args(copy_of, tmp_path))
    assert f"{copy_of / split}.csv line 4 (image_id {image_id!r}): {shown}, expected" in err
    assert "fix or remove that row" in err
    assert not (tmp_path / "cache").exists()  # refused before any work


def test_nan_person_in_forget_csv_is_refused_by_local_eval(copy_of, tmp_path, capsys):
    set_cell(copy_of, "forget", 0, "person_id", math.nan)
    err = fails(capsys, ["local-eval", "--bench", "competition", "--data", str(copy_of),
                         "--cache", str(tmp_path / "cache"), "--models", "4", "--quiet",
                         "--out", str(tmp_path / "run")])
    assert "forget.csv line 2" in err and "person_id is empty (NaN)" in err
    assert not (tmp_path / "run").exists()


def test_bad_image_id_names_its_line(copy_of, tmp_path, capsys):
    set_cell(copy_of, "validation", 0, "image_id", "no_dash")
    err = fails(capsys, score_args(copy_of, tmp_path))
    assert "validation.csv line 2: image_id is 'no_dash', expected '<person>-<n>'" in err


def test_a_csv_that_is_not_a_csv(copy_of, tmp_path, capsys):
    (copy_of / "retain.csv").write_bytes(b"")
    err = fails(capsys, score_args(copy_of, tmp_path))
    assert "retain.csv is not a readable CSV" in err and "image_id,age_group,age,person_id" in err


def test_missing_image_names_its_line(copy_of, tmp_path, capsys):
    image_id = pd.read_csv(copy_of / "forget.csv", dtype={"image_id": str}).image_id[1]
    image_path(copy_of, image_id).unlink()
    err = fails(capsys, score_args(copy_of, tmp_path))
    assert f"{image_path(copy_of, image_id)} not found (listed in forget.csv line 3" in err


def test_the_notebook_runtime_refuses_the_same_cells(copy_of):
    set_cell(copy_of, "forget", 0, "person_id", math.nan)
    with pytest.raises(ValueError, match=r"forget.csv line 2 .*person_id is empty \(NaN\)"):
        ds.validate_input(copy_of, copy_of / "original_model.pth")


# --- data sources: corrupt or truncated images ------------------------------------------

def corrupt(path: Path, how: str) -> None:
    """Make an image file unreadable: ``garbage`` bytes, or ``truncated`` to its first half."""
    data = path.read_bytes()
    path.write_bytes(b"not an image at all" if how == "garbage" else data[: len(data) // 2])


@pytest.mark.parametrize("how,why", [("garbage", "cannot identify image file"),
                                     ("truncated", "truncated")])
def test_corrupt_competition_image_names_file_and_line(copy_of, tmp_path, capsys, how, why):
    image_id = pd.read_csv(copy_of / "retain.csv", dtype={"image_id": str}).image_id[5]
    file = image_path(copy_of, image_id)
    corrupt(file, how)
    err = fails(capsys, ["local-eval", "--bench", "competition", "--data", str(copy_of),
                         "--cache", str(tmp_path / "cache"), "--models", "4", "--quiet",
                         "--out", str(tmp_path / "run")])
    assert err.startswith(f"error: {file} is not a readable image (")
    assert why in err
    assert f"listed in retain.csv line 7 (image_id {image_id!r})" in err
    assert "replace it with a valid RGB PNG or remove that row" in err
    assert not (tmp_path / "run").exists()


def test_corrupt_competition_image_in_the_notebook_runtime(copy_of):
    image_id = pd.read_csv(copy_of / "validation.csv", dtype={"image_id": str}).image_id[0]
    corrupt(image_path(copy_of, image_id), "truncated")
    tables = ds.validate_input(copy_of, copy_of / "original_model.pth")
    with pytest.raises(ValueError, match=r"not a readable image .*validation.csv line 2"):
        ds.load_datasets(tables, progress=False)


def test_corrupt_original_model_in_the_notebook_runtime(copy_of):
    (copy_of / "original_model.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="original_model.pth is not a torch checkpoint"):
        ds.validate_input(copy_of, copy_of / "original_model.pth")


def fake_cifar(root: Path) -> Path:
    """A tiny CIFAR-10 image folder: 10 classes, 4 train and 1 test PNG each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("test", 1)):
        for c in range(10):
            (root / split / f"class{c}").mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / f"class{c}" / f"{i:04d}.png")
    return root


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_corrupt_cifar_image_names_the_file(tmp_path, capsys, monkeypatch, how):
    root = fake_cifar(tmp_path / "c10")
    bad = root / "train" / "class3" / "0002.png"
    corrupt(bad, how)
    monkeypatch.chdir(tmp_path)  # the decoded-image cache defaults to ./data/cache
    err = fails(capsys, ["mock-competition", "--source", "cifar10", "--root", str(root),
                         "--out", str(tmp_path / "mock"), "--epochs", "1", "--quiet"])
    assert err.startswith(f"error: {bad} is not a readable image (")
    assert f"in the CIFAR-10 image folder {root / 'train'}: restore it" in err
    assert not (tmp_path / "mock").exists()
    assert not list((tmp_path / "data").rglob("*.pt"))  # nothing cached from a failed decode


# --- score-submission -------------------------------------------------------------------

def test_score_a_file_that_is_not_a_zip(mock_dir, tmp_path, capsys):
    bad = tmp_path / "submission.zip"
    bad.write_text("this is not a zip")
    err = fails(capsys, ["score-submission", str(bad), "--data", str(mock_dir), "--quiet",
                         "--cache", str(tmp_path / "cache")])
    assert f"{bad} is not a zip file; expected the submission.zip the notebook writes" in err


def _zip_of(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "submission.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _pickled_module() -> bytes:
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), buf)  # the whole module, not its state_dict
    return buf.getvalue()


@pytest.mark.parametrize("payload,why", [
    (b"hello, not a checkpoint", "is not a torch checkpoint ("),
    (_pickled_module(), "holds pickled Python objects, not only tensors"),
])
def test_score_a_member_that_is_not_a_checkpoint(mock_dir, tmp_path, capsys, payload, why):
    member = "kaggle/tmp/unlearned_checkpoint_0.pth"
    members = {f"kaggle/tmp/unlearned_checkpoint_{i}.pth": payload for i in range(4)}
    zip_path = _zip_of(tmp_path, members)  # 4: enough members to score, so each is read
    err = fails(capsys, ["score-submission", str(zip_path), "--data", str(mock_dir), "--quiet",
                         "--cache", str(tmp_path / "cache")])
    assert f"{zip_path}:{member}" in err and why in err
    assert "expected a state_dict saved with torch.save(net.state_dict(), path)" in err
    assert "weights_only" not in err


def test_score_a_member_that_holds_no_dict(mock_dir, tmp_path, capsys):
    buf = io.BytesIO()
    torch.save(torch.zeros(3), buf)
    members = {f"unlearned_checkpoint_{i}.pth": buf.getvalue() for i in range(4)}
    err = fails(capsys, ["score-submission", str(_zip_of(tmp_path, members)), "--data",
                         str(mock_dir), "--quiet", "--cache", str(tmp_path / "cache")])
    assert "unlearned_checkpoint_0.pth holds a Tensor, not a state_dict" in err


# --- build-notebook and the notebook's own check ----------------------------------------

@pytest.mark.parametrize("option,value,name", [
    ("--budget-hours", "-1", "TIME_BUDGET_HOURS = -1.0"),
    ("--budget-hours", "0", "TIME_BUDGET_HOURS = 0.0"),
    ("--budget-hours", "nan", "TIME_BUDGET_HOURS = nan"),
    ("--budget-hours", "inf", "TIME_BUDGET_HOURS = inf"),
    ("--checkpoints", "-5", "NUM_CHECKPOINTS = -5"),
    ("--checkpoints", "0", "NUM_CHECKPOINTS = 0"),
    ("--guard-after", "0", "GUARD_AFTER_RUNS = 0"),
    ("--guard-after", "-2", "GUARD_AFTER_RUNS = -2"),
    ("--checkpoints", "1000000000", "NUM_CHECKPOINTS = 1000000000"),
    ("--budget-hours", "1e6", "TIME_BUDGET_HOURS = 1000000.0"),
    ("--guard-after", "99999", "GUARD_AFTER_RUNS = 99999"),
])
def test_build_notebook_refuses_impossible_settings(tmp_path, capsys, option, value, name):
    out = tmp_path / "nb.ipynb"
    err = fails(capsys, ["build-notebook", option, value, "--out", str(out),
                         "--script", str(tmp_path / "nb.py")])
    assert f"{name} is impossible: it must be" in err
    assert "edit the notebook's first cell, or rebuild it with build-notebook" in err
    assert list(tmp_path.iterdir()) == []  # no notebook, no script, no temporary file


def test_build_notebook_keeps_an_existing_notebook(tmp_path, capsys):
    out = tmp_path / "nb.ipynb"
    out.write_text("the old notebook")
    fails(capsys, ["build-notebook", "--checkpoints", "0", "--out", str(out)])
    assert out.read_text() == "the old notebook"


@pytest.mark.parametrize("values,message", [
    ((0, 7.5, 3), "NUM_CHECKPOINTS = 0 is impossible: it must be an integer in "),
    ((-5, 7.5, 3), "NUM_CHECKPOINTS = -5 is impossible"),
    ((2.5, 7.5, 3), "NUM_CHECKPOINTS = 2.5 is impossible"),
    ((True, 7.5, 3), "NUM_CHECKPOINTS = True is impossible"),
    ((512, -1, 3), "TIME_BUDGET_HOURS = -1 is impossible: it must be a number of hours in (0, 12.0]"),
    ((512, 0, 3), "TIME_BUDGET_HOURS = 0 is impossible"),
    ((512, float("nan"), 3), "TIME_BUDGET_HOURS = nan is impossible"),
    ((512, float("inf"), 3), "TIME_BUDGET_HOURS = inf is impossible"),
    ((512, "7.5", 3), "TIME_BUDGET_HOURS = '7.5' is impossible"),
    ((512, 7.5, 0), "GUARD_AFTER_RUNS = 0 is impossible: it must be an integer in "),
    ((512, 7.5, 1.5), "GUARD_AFTER_RUNS = 1.5 is impossible"),
])
def test_the_notebook_check_refuses_impossible_values(values, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_config(*values)
    with pytest.raises(ValueError, match="is impossible"):  # Settings checks them too
        Settings.from_env(values[0], values[1], {}, guard_after_runs=values[2])


def test_the_notebook_check_accepts_the_defaults_and_env_override():
    check_config(512, 7.5, 3)
    check_config(1, 1e-6, 1)  # the time guard test's tiny budget
    with pytest.raises(ValueError, match="UNLEARNKIT_NUM_CHECKPOINTS='0' is below 1"):
        Settings.from_env(512, 7.5, {"UNLEARNKIT_NUM_CHECKPOINTS": "0"})
    with pytest.raises(ValueError, match="UNLEARNKIT_NUM_CHECKPOINTS='-3' is below 1"):
        Settings.from_env(512, 7.5, {"UNLEARNKIT_NUM_CHECKPOINTS": "-3"})


def test_the_notebook_runs_the_check_first():
    """The settings cell calls check_config on the first cell's values before anything else."""
    source = (Path(__file__).parents[1] / "notebooks" / "submission.py").read_text()
    call = "check_config(NUM_CHECKPOINTS, TIME_BUDGET_HOURS, GUARD_AFTER_RUNS)"
    assert call in source
    assert source.index(call) < source.index("SETTINGS = ") < source.index("check_method(METHOD")


# --- mock-competition -------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--epochs", "0"], "--epochs must be an integer >= 1"),
    (["--epochs", "-1"], "--epochs must be an integer >= 1"),
    (["--forget-fraction", "0"], "--forget-fraction must be a number in (0, 0.5)"),
    (["--forget-fraction", "0.5"], "--forget-fraction must be a number in (0, 0.5)"),
    (["--forget-fraction", "nan"], "got nan"),
    (["--imbalance", "0"], "--imbalance must be a number in (0, 1]"),
    (["--imbalance", "1.5"], "--imbalance must be a number in (0, 1]"),
    (["--views", "0"], "--views must be an integer >= 1"),
    (["--train-per-class", "5"], "--train-per-class applies to cifar10 only"),
    (["--source", "cifar10", "--train-per-class", "0"], "--train-per-class must be an integer >= 1"),
    (["--seed", "-1"], "--seed must be an integer >= 0"),
    (["--model", "nope"], "unknown model 'nope' (--model)"),
])
def test_mock_competition_refuses_options_out_of_range(tmp_path, capsys, monkeypatch, args,
                                                       message):
    def no_work(*a, **k):
        raise AssertionError("the source was loaded before the options were checked")

    monkeypatch.setattr("unlearnkit.kaggle.mock.load_source", no_work)
    err = fails(capsys, ["mock-competition", "--out", str(tmp_path / "mock"), "--quiet", *args])
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_mock_competition_refuses_an_existing_folder(tmp_path, capsys):
    (tmp_path / "mock").mkdir()
    err = fails(capsys, ["mock-competition", "--out", str(tmp_path / "mock"), "--epochs", "1"])
    assert "already exists; pass --overwrite or choose another folder" in err
