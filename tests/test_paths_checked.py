"""Issue 30, principles 1, 2 and 4: the kit never deletes or overwrites what it did not
write, checks every path before any work, and turns an OS error into one line.

Through the real command line. Every refusal must come before any data is read (the
data source is replaced by a failure), so each case takes about a second.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest
import yaml
from cli_checks import refused as cli_refused
from tiny_bench import tiny_bench

from unlearnkit import paths
from unlearnkit.cli import main
from unlearnkit.harness import context

READ_ONLY = Path("/sys/unlearnkit-probe")  # even root cannot create files under /sys


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """The tiny benchmark's YAML; reading any data fails the test."""
    monkeypatch.setattr(context, "get_source", lambda *a, **k: pytest.fail("data was read"))
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_bench(4)))
    return path


def refused(capsys, argv: list[str], *words: str) -> str:
    """The CLI's one-line refusal, in seconds: before any work."""
    return cli_refused(capsys, argv, *words, within=10)


def local_eval(bench: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["local-eval", "--bench", str(bench), "--method", "finetune", "--quiet",
            "--cache", str(tmp_path / "cache"), *extra]


def users_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "thesis.tex").write_text("years of work")
    return path


# ---------------------------------------------------------------- principle 1: --out


def test_local_eval_refuses_an_out_folder_it_did_not_write(bench, tmp_path, capsys):
    mine = users_folder(tmp_path / "mine")
    refused(capsys, local_eval(bench, tmp_path, "--out", str(mine)),
            f"--out {mine}", "thesis.tex", "did not write", "give a new folder")
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert not (tmp_path / "cache").exists()


def test_local_eval_refuses_the_working_folder(bench, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(users_folder(tmp_path / "work"))
    refused(capsys, local_eval(bench, tmp_path, "--out", "."), "--out .",
            "is the working folder")
    refused(capsys, local_eval(bench, tmp_path, "--out", ".."), "holds the working folder")
    assert (tmp_path / "work" / "thesis.tex").is_file()


@pytest.mark.parametrize("out,rel", [("cache", "is the cache"),
                                     ("cache/sub", "sits inside the cache"),
                                     (".", "holds the cache")])
def test_out_is_kept_away_from_the_cache(bench, tmp_path, capsys, out, rel):
    (tmp_path / "cache").mkdir()
    refused(capsys, local_eval(bench, tmp_path, "--out", str(tmp_path / out)), rel)


def test_out_is_kept_away_from_the_data(bench, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    refused(capsys, local_eval(bench, tmp_path, "--data", str(data), "--out",
                               str(data / "run")), "sits inside the data root")


def test_an_out_that_is_a_file_is_refused(bench, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep")
    refused(capsys, local_eval(bench, tmp_path, "--out", str(tmp_path / "notes.txt")),
            "is a file, not a folder")
    assert (tmp_path / "notes.txt").read_text() == "keep"


def test_several_methods_check_each_subfolder(bench, tmp_path, capsys):
    users_folder(tmp_path / "out" / "random_label")
    argv = local_eval(bench, tmp_path, "--out", str(tmp_path / "out"))
    argv[argv.index("finetune")] = "finetune,random_label"
    refused(capsys, argv, "random_label", "thesis.tex")


def test_tune_refuses_an_out_folder_it_did_not_write(bench, tmp_path, capsys):
    mine = users_folder(tmp_path / "mine")
    refused(capsys, ["tune", "--bench", str(bench), "--method", "finetune", "--quiet",
                     "--cache", str(tmp_path / "cache"), "--out", str(mine), "--storage",
                     f"sqlite:///{tmp_path / 's.db'}"], "thesis.tex")
    assert (mine / "thesis.tex").is_file() and not (tmp_path / "s.db").exists()


def test_tune_refuses_the_cache_as_out(bench, tmp_path, capsys):
    refused(capsys, ["tune", "--bench", str(bench), "--method", "finetune", "--quiet",
                     "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "cache"),
                     "--storage", f"sqlite:///{tmp_path / 's.db'}"], "is the cache")


def test_tune_refuses_a_storage_that_is_not_sqlite(bench, tmp_path, capsys):
    db = tmp_path / "notes.db"
    db.write_text("not a database")
    refused(capsys, ["tune", "--bench", str(bench), "--method", "finetune", "--quiet",
                     "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "t"),
                     "--storage", f"sqlite:///{db}"], str(db), "not an SQLite database")
    assert db.read_text() == "not a database"


def test_an_sqlite_storage_passes(tmp_path):
    db = tmp_path / "s.db"
    sqlite3.connect(db).execute("create table t (x)").connection.close()
    paths.check_storage(f"sqlite:///{db}")
    paths.check_storage(f"sqlite:///{tmp_path / 'new' / 'x.db'}")


def test_leaderboard_refuses_an_out_folder_it_did_not_write(bench, tmp_path, capsys):
    mine = users_folder(tmp_path / "mine")
    refused(capsys, ["leaderboard", "--bench", str(bench), "--methods", "finetune", "--quiet",
                     "--cache", str(tmp_path / "cache"), "--out", str(mine)], "thesis.tex")


def test_train_original_refuses_an_existing_folder_before_training(bench, tmp_path, capsys):
    mine = users_folder(tmp_path / "mine")
    refused(capsys, ["train-original", "--bench", str(bench), "--cache",
                     str(tmp_path / "cache"), "--out", str(mine)], "is a folder")
    (tmp_path / "notes.pth").write_text("mine")
    refused(capsys, ["train-original", "--bench", str(bench), "--cache",
                     str(tmp_path / "cache"), "--out", str(tmp_path / "notes.pth")],
            "not written by unlearnkit")


def test_the_kits_own_output_is_replaced_and_anothers_file_named(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "report.json").write_text("{}")
    assert paths.foreign_file(out) is None  # an older version's output: the kit's names
    (out / "report.md").write_text("x")
    (out / "extra.csv").write_text("x")
    assert paths.foreign_file(out) == "extra.csv"
    paths.mark_output(out)
    assert paths.foreign_file(out) is None
    (out / "later.txt").write_text("the user's")
    assert paths.foreign_file(out) == "later.txt"
    assert paths.check_out_dir(tmp_path / "new") == (tmp_path / "new").resolve()


# ---------------------------------------------------------------- principle 2: every path


def test_a_cache_that_is_a_file_is_refused(bench, tmp_path, capsys, monkeypatch):
    (tmp_path / "c").write_text("x")
    monkeypatch.setenv("UNLEARNKIT_CACHE", str(tmp_path / "c"))
    argv = ["local-eval", "--bench", str(bench), "--quiet", "--out", str(tmp_path / "r")]
    refused(capsys, argv, f"the cache {tmp_path / 'c'}", "$UNLEARNKIT_CACHE", "is a file")
    monkeypatch.setenv("UNLEARNKIT_CACHE", str(tmp_path / "c" / "sub"))
    refused(capsys, argv, "is a file, not a folder")


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs /sys (read-only even to root)")
def test_a_read_only_cache_or_out_is_refused(bench, tmp_path, capsys):
    refused(capsys, ["local-eval", "--bench", str(bench), "--quiet", "--cache", str(READ_ONLY),
                     "--out", str(tmp_path / "r")], "the cache (--cache)", "cannot be written",
            "--cache")
    refused(capsys, local_eval(bench, tmp_path, "--out", str(READ_ONLY / "run")),
            "cannot be written")


def test_a_data_root_that_is_a_file_is_refused_in_cli_words(bench, tmp_path, capsys):
    (tmp_path / "data.zip").write_bytes(b"PK")
    err = refused(capsys, local_eval(bench, tmp_path, "--out", str(tmp_path / "r"), "--data",
                                     str(tmp_path / "data.zip")),
                  "the data root", "(--data) is a file")
    assert "root=" not in err and "download=" not in err


# ---------------------------------------------------------------- principle 4: OS errors


@pytest.mark.parametrize("code,fix", [(errno.ENOSPC, "free space"),
                                      (errno.EACCES, "writable"), (errno.EROFS, "read-only")])
def test_an_os_error_is_one_line_naming_the_path(bench, tmp_path, capsys, monkeypatch, code,
                                                 fix):
    def full(*a, **k):
        raise OSError(code, "the disk said no", str(tmp_path / "cache" / "x.npz"))

    monkeypatch.setattr("unlearnkit.harness.pipeline.check_request", lambda *a, **k: {})
    monkeypatch.setattr("unlearnkit.harness.pipeline.local_eval", full)
    refused(capsys, local_eval(bench, tmp_path, "--out", str(tmp_path / "r")),
            str(tmp_path / "cache" / "x.npz"), "the disk said no", fix)
    assert not (tmp_path / "r").exists()


def test_ctrl_c_is_one_line_and_130(bench, tmp_path, capsys, monkeypatch):
    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("unlearnkit.harness.pipeline.check_request", lambda *a, **k: {})
    monkeypatch.setattr("unlearnkit.harness.pipeline.local_eval", interrupt)
    assert main(local_eval(bench, tmp_path, "--out", str(tmp_path / "r"))) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted") and "\n" not in err and "Traceback" not in err


# ---------------------------------------------------------------- the Kaggle commands


def test_score_submission_checks_zip_and_out_before_any_work(mock_dir, tmp_path, capsys):
    zip_path = tmp_path / "submission.zip"
    zip_path.write_bytes(b"never read")
    base = ["score-submission", str(zip_path), "--data", str(mock_dir), "--cache",
            str(tmp_path / "cache"), "--quiet"]
    refused(capsys, [*base, "--out", str(tmp_path)], "is a folder", "give a file name")
    (tmp_path / "notes.txt").write_text("mine")
    refused(capsys, [*base, "--out", str(tmp_path / "notes.txt")], "not written by unlearnkit")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    refused(capsys, ["score-submission", str(tmp_path), "--data", str(mock_dir)],
            "the zip", "is a folder")
    refused(capsys, ["score-submission", str(tmp_path / "none.zip"), "--data", str(mock_dir)],
            "not found")


def test_build_notebook_refuses_a_folder_as_out(tmp_path, capsys):
    refused(capsys, ["build-notebook", "--out", str(tmp_path)], "is a folder")
    refused(capsys, ["build-notebook", "--out", str(tmp_path / "nb.ipynb"), "--script",
                     str(tmp_path)], "--script", "is a folder")
    assert list(tmp_path.iterdir()) == []


def test_mock_competition_overwrites_only_a_mock(tmp_path, capsys):
    mine = users_folder(tmp_path / "mine")
    refused(capsys, ["mock-competition", "--out", str(mine), "--overwrite", "--epochs", "1"],
            "not a mock competition", "mock.json")
    assert (mine / "thesis.tex").is_file()


def test_kaggle_local_refuses_a_folder_it_did_not_make_before_any_work(tmp_path, capsys,
                                                                       monkeypatch):
    from unlearnkit.kaggle import mock

    monkeypatch.setattr(mock, "make_mock_competition",
                        lambda *a, **k: pytest.fail("a mock was written"))
    mine = users_folder(tmp_path / "mine")
    refused(capsys, ["kaggle-local", "--out", str(mine), "--quiet"], "--out", "not a folder "
            "unlearnkit made")
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_a_work_folder_the_kit_marked_is_accepted_whatever_it_holds(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    paths.mark_output(folder, "kaggle-local")
    (folder / "input").mkdir()
    (folder / "input" / "retain.csv").write_text("written by the kit's mock")
    assert paths.check_work_dir(folder) == folder.resolve()
    with pytest.raises(ValueError, match="is a file"):
        paths.check_work_dir(folder / "input" / "retain.csv")
