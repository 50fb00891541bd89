"""One reader of the competition layout: the host's source and the notebook's runtime agree."""

from __future__ import annotations

import pytest
import torch

from unlearnkit.data import read_competition
from unlearnkit.data.competition_layout import SPLITS
from unlearnkit.data.images import decode_images
from unlearnkit.data.loaders import loader_seed
from unlearnkit.kaggle.runtime import dataset as ds


def test_host_and_notebook_read_the_same_items(mock_dir):
    host = read_competition(mock_dir, progress=False)
    tables = ds.validate_input(mock_dir, mock_dir / "original_model.pth")
    notebook = ds.load_datasets(tables, progress=False)
    for name in SPLITS:
        want = host.train.subset(host.predefined[name])
        got = notebook[name]
        items = [got[i] for i in range(len(got))]
        assert torch.equal(torch.stack([it["image"] for it in items]), want.images)
        assert [it["image_id"] for it in items] == want.ids
        assert torch.equal(torch.stack([it["age_group"] for it in items]), want.labels)
        assert torch.equal(torch.stack([it["person_id"] for it in items]), want.groups)


def test_notebook_loaders_follow_the_loader_seed_rule(mock_dir):
    tables = ds.validate_input(mock_dir, mock_dir / "original_model.pth")
    loaders = ds.make_loaders(ds.load_datasets(tables, progress=False), seed=5)
    assert [ld.generator.initial_seed() for ld in loaders] == [loader_seed(5, k) for k in range(3)]
    assert [ld.batch_size for ld in loaders] == [ds.LOADER_BATCH_SIZE] * 3


def test_loader_seed_is_distinct_per_run_and_part():
    seeds = [loader_seed(run, part) for run in range(50) for part in range(3)]
    assert len(set(seeds)) == len(seeds) and loader_seed(0, 0) == 0
    with pytest.raises(ValueError, match="part must be"):
        loader_seed(1, 3)


def test_decoder_takes_one_size(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 6), (1, 2, 3)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")
    one = decode_images([tmp_path / "a.png"], progress=False, size=None)
    assert one.dtype == torch.uint8 and one.shape == (1, 3, 6, 8)
    assert one[0, :, 0, 0].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="b.png is 8x8, expected 8x6"):
        decode_images([tmp_path / "a.png", tmp_path / "b.png"], progress=False, size=None)
    with pytest.raises(ValueError, match="a.png is 8x6, expected 32x32"):
        decode_images([tmp_path / "a.png"], progress=False)
    assert decode_images([], progress=False).shape == (0, 3, 32, 32)
