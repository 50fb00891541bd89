"""The built notebook, executed headless: the empty commit run, bad inputs, the time guard."""

from __future__ import annotations

import json
import re
import shutil
import time

import nbformat
import pytest

from unlearnkit.kaggle.local import NotebookFailed, execute_notebook, notebook_env
from unlearnkit.kaggle.notebook import build_notebook

pytestmark = pytest.mark.slow


def test_empty_txt_gives_an_empty_zip_quickly(tmp_path, built_notebook):
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "empty.txt").write_text("")
    env = notebook_env(tmp_path / "input", tmp_path / "work", tmp_path / "out")
    start = time.time()
    execute_notebook(built_notebook, env, cwd=str(tmp_path), timeout=300)
    assert time.time() - start < 120
    assert (tmp_path / "out" / "submission.zip").stat().st_size == 0
    assert not (tmp_path / "work").exists()


def test_a_missing_csv_stops_before_any_run(mock_dir, tmp_path, built_notebook):
    shutil.copytree(mock_dir, tmp_path / "input")
    (tmp_path / "input" / "validation.csv").unlink()
    env = notebook_env(tmp_path / "input", tmp_path / "work", tmp_path / "out", 3)
    with pytest.raises(NotebookFailed) as err:
        execute_notebook(built_notebook, env, cwd=str(tmp_path), timeout=300)
    assert err.value.ename == "FileNotFoundError" and "validation.csv" in err.value.evalue
    assert not (tmp_path / "work").exists()


def test_an_unknown_method_in_the_edited_cell_stops_at_once(mock_dir, tmp_path,
                                                           built_notebook):
    nb = nbformat.read(str(built_notebook), as_version=4)
    nb.cells[0].source = re.sub(r'^METHOD = "[^"]+"', 'METHOD = "nope"', nb.cells[0].source,
                                flags=re.M)
    path = tmp_path / "edited.ipynb"
    path.write_text(json.dumps(nb))
    env = notebook_env(mock_dir, tmp_path / "work", tmp_path / "out", 3)
    with pytest.raises(NotebookFailed) as err:
        execute_notebook(path, env, cwd=str(tmp_path), timeout=300)
    assert err.value.ename == "ValueError" and "unknown method 'nope'" in err.value.evalue
    assert not (tmp_path / "work").exists()


def test_time_guard_stops_the_notebook(mock_dir, tmp_path):
    nb = build_notebook(out=tmp_path / "nb.ipynb", budget_hours=1e-6, guard_after_runs=1)
    env = notebook_env(mock_dir, tmp_path / "work", tmp_path / "out", num_checkpoints=50)
    with pytest.raises(NotebookFailed) as err:
        execute_notebook(nb, env, cwd=str(tmp_path), timeout=600)
    assert err.value.ename == "TimeBudgetExceeded"
    assert "over the budget" in err.value.evalue and "runs fit" in err.value.evalue
    assert len(list((tmp_path / "work").iterdir())) == 1  # stopped after the first run
    assert not (tmp_path / "out" / "submission.zip").exists()


@pytest.mark.parametrize("line,name", [("TIME_BUDGET_HOURS = 7.5", "TIME_BUDGET_HOURS = float('nan')"),
                                       ("NUM_CHECKPOINTS = 512", "NUM_CHECKPOINTS = 0")])
def test_an_impossible_number_in_the_edited_cell_stops_at_once(mock_dir, tmp_path, line, name,
                                                               built_notebook):
    nb = nbformat.read(str(built_notebook), as_version=4)
    assert line in nb.cells[0].source
    nb.cells[0].source = nb.cells[0].source.replace(line, name)
    path = tmp_path / "edited.ipynb"
    path.write_text(json.dumps(nb))
    env = notebook_env(mock_dir, tmp_path / "work", tmp_path / "out")
    with pytest.raises(NotebookFailed) as err:
        execute_notebook(path, env, cwd=str(tmp_path), timeout=300)
    assert err.value.ename == "ValueError" and "is impossible: it must be" in err.value.evalue
    assert name.split(" =")[0] in err.value.evalue
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()
