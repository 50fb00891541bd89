"""The built notebook with LOADER = 'contract' and 'device': the same checkpoints, bit for bit."""

from __future__ import annotations

import nbformat
import pytest
import torch

from unlearnkit.kaggle.local import execute_notebook, notebook_env, outputs_text
from unlearnkit.kaggle.notebook import build_notebook
from unlearnkit.kaggle.runtime.checkpoints import checkpoint_path

pytestmark = pytest.mark.slow


def test_build_writes_the_loader_setting_and_refuses_a_bad_one(tmp_path):
    nb = nbformat.read(str(build_notebook(out=tmp_path / "nb.ipynb", loader="contract")),
                       as_version=4)
    assert "LOADER = 'contract'" in nb.cells[0].source
    with pytest.raises(ValueError, match="LOADER = 'gpu' is impossible"):
        build_notebook(out=tmp_path / "bad.ipynb", loader="gpu")
    assert not (tmp_path / "bad.ipynb").exists()


def test_contract_and_device_loaders_give_the_same_checkpoints(mock_dir, tmp_path):
    states, texts = {}, {}
    for loader in ("contract", "device"):
        nb = build_notebook(out=tmp_path / f"{loader}.ipynb", loader=loader)
        env = notebook_env(mock_dir, tmp_path / loader / "work", tmp_path / loader / "out", 2)
        texts[loader] = outputs_text(execute_notebook(nb, env, cwd=str(tmp_path), timeout=600))
        states[loader] = [torch.load(checkpoint_path(tmp_path / loader / "work", i),
                                     weights_only=True) for i in range(2)]
    assert "device loaders:" in texts["device"] and "LOADER = 'contract'" in texts["contract"]
    for a, b in zip(states["contract"], states["device"]):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(states["device"][0]["fc.weight"], states["device"][1]["fc.weight"])
