"""Fixtures shared by several test files."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mock_dir(tmp_path_factory):
    """A small digits mock competition folder (untrained original), built once."""
    from unlearnkit.kaggle.mock import make_mock_competition

    out = tmp_path_factory.mktemp("mock") / "input"
    make_mock_competition(out, "digits", epochs=0, imbalance=0.5, progress=False)
    return out


@pytest.fixture
def copy_of(mock_dir, tmp_path):
    """A private copy of the shared mock competition, free to break."""
    import shutil

    dst = tmp_path / "input"
    shutil.copytree(mock_dir, dst)
    return dst


@pytest.fixture(scope="session")
def built_notebook(tmp_path_factory):
    """The submission notebook built afresh from its source (it is not committed)."""
    from unlearnkit.kaggle.notebook import build_notebook

    return build_notebook(out=tmp_path_factory.mktemp("notebook") / "submission.ipynb")
