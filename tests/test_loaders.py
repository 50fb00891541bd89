"""The dict batches of TensorLoader match the competition notebook's, and unpack reads both forms."""

import pytest
import torch

from unlearnkit.data import ImageSet, TensorLoader, unpack


def tiny_set(n: int = 10, with_groups: bool = True) -> ImageSet:
    """``n`` random integer-valued images with labels n % 10 and groups n // 3."""
    g = torch.Generator().manual_seed(0)
    return ImageSet(
        images=torch.randint(0, 256, (n, 3, 32, 32), generator=g).float(),
        labels=torch.arange(n) % 10,
        groups=torch.arange(n) // 3 if with_groups else None,
    )


def test_batch_keys_dtypes_shapes():
    batches = list(TensorLoader(tiny_set(10), batch_size=4))
    assert len(batches) == 3
    first = batches[0]
    assert set(first) == {"image", "age_group", "person_id", "image_id"}
    assert first["image"].dtype == torch.float32 and first["image"].shape == (4, 3, 32, 32)
    assert first["age_group"].dtype == torch.int64 and first["age_group"].shape == (4,)
    assert first["person_id"].dtype == torch.int64 and first["person_id"].shape == (4,)
    assert isinstance(first["image_id"], list) and all(isinstance(i, str) for i in first["image_id"])
    assert [len(b["age_group"]) for b in batches] == [4, 4, 2]


def test_batch_count_with_drop_last():
    loader = TensorLoader(tiny_set(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and len(list(loader)) == 2


def test_missing_groups_give_minus_one():
    batch = next(iter(TensorLoader(tiny_set(5, with_groups=False), batch_size=5)))
    assert batch["person_id"].tolist() == [-1] * 5


def _epoch_ids(loader) -> list[str]:
    """Image ids of one pass, in batch order."""
    return [i for b in loader for i in b["image_id"]]


def test_every_epoch_covers_the_data_once():
    data = tiny_set(23)
    loader = TensorLoader(data, batch_size=5, shuffle=True, seed=1)
    for _ in range(3):
        ids = _epoch_ids(loader)
        assert sorted(ids) == sorted(data.image_ids())


def test_shuffle_is_determined_by_seed():
    data = tiny_set(30)
    a, b = TensorLoader(data, 8, shuffle=True, seed=3), TensorLoader(data, 8, shuffle=True, seed=3)
    c = TensorLoader(data, 8, shuffle=True, seed=4)
    a1, a2 = _epoch_ids(a), _epoch_ids(a)
    assert a1 == _epoch_ids(b) and a2 == _epoch_ids(b)
    assert a1 != a2, "each pass reshuffles"
    assert a1 != _epoch_ids(c)
    assert _epoch_ids(TensorLoader(data, 8)) == data.image_ids(), "no shuffle keeps the order"


def test_batches_match_their_items():
    data = tiny_set(12)
    index = {i: k for k, i in enumerate(data.image_ids())}
    for batch in TensorLoader(data, batch_size=5, shuffle=True, seed=0):
        rows = torch.tensor([index[i] for i in batch["image_id"]])
        assert torch.equal(batch["image"], data.images[rows])
        assert torch.equal(batch["age_group"], data.labels[rows])
        assert torch.equal(batch["person_id"], data.groups[rows])


def test_unpack_dicts_and_tuples():
    data = tiny_set(6)
    batch = next(iter(TensorLoader(data, batch_size=6)))
    x, y = unpack(batch, "cpu")
    assert torch.equal(x, data.images) and torch.equal(y, data.labels)
    x2, y2 = unpack((data.images.to(torch.uint8), data.labels.int(), "extra"))
    assert x2.dtype == torch.float32 and y2.dtype == torch.int64
    assert torch.equal(x2, data.images) and torch.equal(y2, data.labels)


def test_unpack_rejects_bad_batches():
    with pytest.raises(KeyError, match="age_group"):
        unpack({"image": torch.zeros(1, 3, 32, 32)})
    with pytest.raises(TypeError, match="dict or an"):
        unpack(torch.zeros(2))


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        TensorLoader(tiny_set(3), batch_size=0)
