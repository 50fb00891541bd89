"""The device loaders give the contract DataLoader's batches; the fallback; bad images."""

from __future__ import annotations

import shutil

import pytest
import torch

from unlearnkit.data.device_loader import DeviceLoader, PermutationSampler, fits_on_device
from unlearnkit.data.images import BadImage
from unlearnkit.kaggle.runtime import dataset as ds
from unlearnkit.kaggle.runtime.feed import check_loader, choose_feed


@pytest.fixture(scope="module")
def datasets(mock_dir):
    return ds.load_datasets(ds.validate_input(mock_dir, mock_dir / "original_model.pth"),
                            progress=False)


def assert_same_batches(a, b):
    """Every batch equal: keys in order, dtypes, shapes, values, ids."""
    a, b = list(a), list(b)
    assert len(a) == len(b) >= 1
    for x, y in zip(a, b):
        assert list(x) == list(y)
        for key in x:
            if torch.is_tensor(x[key]):
                assert x[key].dtype == y[key].dtype and torch.equal(x[key], y[key]), key
            else:
                assert x[key] == y[key], key


@pytest.mark.parametrize("seed", [0, 5])
def test_device_and_contract_loaders_give_the_same_batches(datasets, seed):
    device = choose_feed(datasets, "cpu", "device")
    contract = choose_feed(datasets, "cpu", "contract")
    assert device.kind == "device" and contract.kind == "contract"
    for dev, con in zip(device.loaders(seed), contract.loaders(seed)):
        assert len(dev) == len(con) and dev.batch_size == con.batch_size == 64
        assert_same_batches(dev, con)  # first pass
        assert_same_batches(dev, con)  # second pass: a new permutation, the same on both
    assert len(device.loaders(seed)[0]) > 2  # retain: several batches, a partial last one
    first = next(iter(device.loaders(seed)[0]))
    assert first["image"].dtype == torch.float32 and first["image"].max() > 1  # raw 0-255
    assert list(first) == ["image", "image_id", "age_group", "age", "person_id"]


def test_passes_and_seeds_differ(datasets):
    feed = choose_feed(datasets, "cpu", "device")
    retain = feed.loaders(1)[0]
    ids = lambda loader: [i for b in loader for i in b["image_id"]]  # noqa: E731
    one, two = ids(retain), ids(retain)
    assert sorted(one) == sorted(two) and one != two  # every item once a pass, reshuffled
    assert ids(feed.loaders(1)[0]) == one and ids(feed.loaders(2)[0]) != one
    sizes = [len(b["image_id"]) for b in feed.loaders(1)[0]]
    n = len(datasets["retain"])
    assert sum(sizes) == n and sizes[:-1] == [64] * (len(sizes) - 1)  # last batch partial


def test_sampler_and_loader_draw_the_same_orders():
    sampler = PermutationSampler(10, seed=3)
    loader = DeviceLoader({"image": torch.arange(10).view(10, 1), "n": list(range(10))},
                          batch_size=10, shuffle=True, seed=3)
    for _ in range(2):
        assert list(sampler) == next(iter(loader))["n"]


def test_data_too_large_for_the_device_falls_back(datasets):
    feed = choose_feed(datasets, "cpu", "device", free_bytes=1000)
    assert feed.kind == "contract" and "falling back" in feed.reason and "free" in feed.reason
    assert choose_feed(datasets, "cpu", "device", free_bytes=10**12).kind == "device"
    assert fits_on_device(10**9, "cpu")[0]  # the CPU counts as fitting
    assert not fits_on_device(600, "cpu", free_bytes=1000)[0]  # half the free memory at most


def test_bad_loader_setting_and_fields():
    with pytest.raises(ValueError, match="LOADER = 'gpu' is impossible"):
        check_loader("gpu")
    with pytest.raises(ValueError, match="one entry per item"):
        DeviceLoader({"image": torch.zeros(3, 1), "id": ["a"]})


def test_an_image_that_does_not_decode_is_named(mock_dir, tmp_path):
    folder = tmp_path / "input"
    shutil.copytree(mock_dir, folder)
    tables = ds.validate_input(folder, folder / "original_model.pth")
    bad = tables["retain"]["image_path"].iloc[2]
    with open(bad, "r+b") as f:  # a truncated PNG: the header survives, the pixels do not
        f.truncate(40)
    with pytest.raises(BadImage) as err:
        ds.load_datasets(tables, progress=False)
    assert bad in str(err.value) and "not a readable image" in str(err.value)
