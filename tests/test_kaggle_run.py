"""The notebook, built afresh and executed headless on a small digits mock: three checkpoints."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch
from torchvision.models import resnet18

from unlearnkit.kaggle.local import execute_notebook, notebook_env
from unlearnkit.kaggle.runtime.checkpoints import zip_checkpoint_members

pytestmark = pytest.mark.slow


def test_the_notebook_makes_three_distinct_checkpoints(mock_dir, tmp_path, built_notebook):
    env = notebook_env(mock_dir, tmp_path / "work", tmp_path / "out", num_checkpoints=3)
    execute_notebook(built_notebook, env, cwd=str(tmp_path), timeout=600)
    zip_path = tmp_path / "out" / "submission.zip"
    members = zip_checkpoint_members(zip_path)
    assert sorted(members) == [0, 1, 2]
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == \
        [f"unlearned_checkpoint_{i}.pth" for i in range(3)]
    weights = []
    with zipfile.ZipFile(zip_path) as zf:
        assert len(zf.namelist()) == 3
        for i in range(3):
            state = torch.load(io.BytesIO(zf.read(members[i])), weights_only=True)
            resnet18(num_classes=10).load_state_dict(state)  # strict: every key, every shape
            weights.append(state["fc.weight"])
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])

