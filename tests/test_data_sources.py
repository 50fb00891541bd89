"""Sources: the registry, the data root, digits, and CIFAR-10 in both layouts (and its cache)."""

import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearnkit.data import cifar10 as cifar_mod
from unlearnkit.data import data_root, get_source, source_names
from unlearnkit.data.sources import expand_views, view_params

# --- registry and data root --------------------------------------------------------------


def test_source_names():
    assert source_names() == ["cifar10", "competition", "digits"]


def test_unknown_source_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown data source 'mnist'; choose one of: cifar10, competition, digits"):
        get_source("mnist")


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['colour'\].*views"):
        get_source("digits", colour=True)


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("UNLEARNKIT_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "given") == tmp_path / "given"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("UNLEARNKIT_DATA")
    monkeypatch.chdir(tmp_path)
    assert data_root() == tmp_path / "data"


# --- digits ------------------------------------------------------------------------------


def assert_standard_images(data):
    """float32 [n, 3, 32, 32] integer values in 0-255, labels int64 in 0-9."""
    assert data.images.dtype == torch.float32 and tuple(data.images.shape[1:]) == (3, 32, 32)
    assert data.images.min() >= 0 and data.images.max() <= 255
    assert torch.equal(data.images, data.images.round()), "integer-valued pixels"
    assert data.labels.dtype == torch.int64 and 0 <= data.labels.min() and data.labels.max() <= 9


def test_digits_plain():
    src = get_source("digits", views=1)
    assert len(src.train) + len(src.test) == 1797
    assert len(src.test) == 450
    assert_standard_images(src.train)
    assert_standard_images(src.test)
    assert src.train.images.max() == 255 and src.classes == [str(d) for d in range(10)]
    assert torch.equal(src.train.images[:, 0], src.train.images[:, 2]), "grey copied into RGB"
    all_groups = torch.cat([src.train.groups, src.test.groups])
    assert sorted(all_groups.tolist()) == list(range(1797)), "one group per image"
    counts = torch.bincount(src.test.labels, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 47, "stratified 25% test split"


def test_digits_views_make_groups_across_train_and_test():
    src = get_source("digits")  # views=3
    assert len(src.train) + len(src.test) == 3 * 1797
    groups = torch.cat([src.train.groups, src.test.groups])
    assert torch.bincount(groups).tolist() == [3] * 1797
    assert len(set(src.train.groups.tolist()) & set(src.test.groups.tolist())) > 100
    ids = src.train.ids + src.test.ids
    assert len(set(ids)) == len(ids) and all(i.split("-")[1] in "012" for i in ids)
    lookup = dict(zip(src.train.ids, range(len(src.train))))
    same = [lookup[f"{g}-{v}"] for g in range(300) for v in range(3) if f"{g}-{v}" in lookup]
    assert len({int(src.train.labels[i]) for i in same[:2]}) == 1


def test_digits_is_deterministic_and_fast():
    get_source("digits")  # warm imports
    start = time.perf_counter()
    a = get_source("digits")
    assert time.perf_counter() - start < 2.0, "about 0.15 s on an idle 2-core CPU; margin for load"
    b = get_source("digits")
    assert torch.equal(a.train.images, b.train.images) and a.train.ids == b.train.ids


def test_views_are_small_nonzero_shifts():
    base = torch.zeros(4, 3, 32, 32)
    base[:, :, 10:20, 12:18] = 200.0
    views, owner = expand_views(base, 4, max_shift=2)  # [16, 3, 32, 32]
    assert owner.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    for i in range(16):
        ys, xs = torch.nonzero(views[i, 0], as_tuple=True)
        dy, dx = int(ys.min()) - 10, int(xs.min()) - 12
        assert max(abs(dx), abs(dy)) <= 2
        assert (dx, dy) == (0, 0) if i % 4 == 0 else (dx, dy) != (0, 0)
    again, _ = expand_views(base, 4, max_shift=2)
    assert torch.equal(views, again)


def shifted_reference(image: torch.Tensor, dx: int, dy: int, flip: bool) -> torch.Tensor:
    """One image [C, H, W] moved by (dx, dy) with zero fill, then mirrored: the slow way."""
    out = torch.zeros_like(image)
    _, h, w = image.shape
    for y in range(h):
        for x in range(w):
            if 0 <= y - dy < h and 0 <= x - dx < w:
                out[:, y, x] = image[:, y - dy, x - dx]
    return out.flip(-1) if flip else out


def test_views_match_a_slow_reference_with_flips():
    images = torch.rand(6, 3, 32, 32)
    views, _ = expand_views(images, 3, max_shift=3, flip=True)  # [18, 3, 32, 32]
    flipped = 0
    for v in range(3):
        dx, dy, flips = view_params(np.arange(6), v, 3, True)
        flipped += int(flips.sum())
        for i in range(6):
            want = shifted_reference(images[i], int(dx[i]), int(dy[i]), bool(flips[i]))
            assert torch.equal(views[3 * i + v], want)
    assert flipped > 0


def test_views_must_be_positive():
    with pytest.raises(ValueError, match="views must be an integer >= 1"):
        get_source("digits", views=0)


# --- CIFAR-10 without the real data -------------------------------------------------------


def make_image_folder(root: Path, classes=("cat", "airplane", "dog"), n_train=3, n_test=2):
    """A tiny image folder with random 32x32 PNGs (lossless, so values can be compared)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i:04d}.png")
    return root


def make_pickle_layout(root: Path, per_batch=10):
    """A fake cifar-10-batches-py folder in torchvision's pickle format."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [i % 10 for i in range(per_batch)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    names = [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                   "frog", "horse", "ship", "truck")]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names}, f)
    return folder


def test_cifar_image_folder_layout(tmp_path):
    make_image_folder(tmp_path / "data" / "cifar10-jpeg")
    src = get_source("cifar10", root=tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)
    assert src.classes == ["airplane", "cat", "dog"], "alphabetical order"
    assert len(src.train) == 9 and len(src.test) == 6
    assert src.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert_standard_images(src.train)
    assert src.test.groups.min() == 9, "test groups are numbered after train groups"
    from PIL import Image

    first = np.array(Image.open(tmp_path / "data/cifar10-jpeg/train/airplane/0000.png"))
    assert torch.equal(src.train.images[0], torch.from_numpy(first).permute(2, 0, 1).float())


def test_cifar_cache_is_written_and_reused(tmp_path, monkeypatch):
    make_image_folder(tmp_path / "c10")
    opts = dict(root=tmp_path / "c10", cache_dir=tmp_path / "cache", train_per_class=2, progress=False)
    first = get_source("cifar10", **opts)
    cached = sorted((tmp_path / "cache" / "cifar10").glob("*.pt"))
    assert [p.name.split("-")[:2] for p in cached] == [["test", "all"], ["train", "2"]]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(cifar_mod, "decode_images", no_decoding)
    again = get_source("cifar10", **opts)
    assert torch.equal(first.train.images, again.train.images) and len(again.train) == 6
    with pytest.raises(AssertionError, match="decoded again"):
        get_source("cifar10", **{**opts, "train_per_class": 1})


def test_cifar_pickle_layout(tmp_path):
    make_pickle_layout(tmp_path)
    src = get_source("cifar10", root=tmp_path, train_per_class=2, progress=False)
    assert len(src.train) == 20 and len(src.test) == 10
    assert src.classes[0] == "airplane" and torch.bincount(src.train.labels).tolist() == [2] * 10
    assert_standard_images(src.train)


def test_cifar_views_and_flips(tmp_path):
    make_image_folder(tmp_path / "c10")
    src = get_source("cifar10", root=tmp_path / "c10", cache_dir=tmp_path / "cache", views=2,
                     progress=False)
    assert len(src.train) == 18 and src.train.ids[:2] == ["0-0", "0-1"]
    assert torch.equal(src.train.groups[:4], torch.tensor([0, 0, 1, 1]))


def test_cifar_held_out_views_put_other_frames_of_train_persons_in_test(tmp_path):
    make_image_folder(tmp_path / "c10")
    opts = dict(root=tmp_path / "c10", cache_dir=tmp_path / "cache", views=2, progress=False)
    plain = get_source("cifar10", **opts)
    held = get_source("cifar10", held_out_views=1, test_per_class=0, **opts)
    assert torch.equal(held.train.images, plain.train.images), "train views unchanged"
    assert held.train.ids == plain.train.ids
    assert len(held.test) == 9 and held.test.ids[:2] == ["0-2", "1-2"]
    assert set(held.test.groups.tolist()) == set(held.train.groups.tolist())
    assert not any(torch.equal(held.test.images[0], x) for x in held.train.images[:2]), \
        "the held-out frame is a new view, not a copy of a train view"
    both = get_source("cifar10", held_out_views=1, **opts)
    assert len(both.test) == 9 + len(plain.test), "CIFAR's own test images kept unless 0"


def test_cifar_empty_test_set_is_refused(tmp_path):
    make_image_folder(tmp_path / "c10")
    with pytest.raises(ValueError, match="test set would be empty"):
        get_source("cifar10", root=tmp_path / "c10", test_per_class=0)


def test_cifar_bad_subset_size(tmp_path):
    make_image_folder(tmp_path / "c10")
    with pytest.raises(ValueError, match="train_per_class must be an integer >= 1"):
        get_source("cifar10", root=tmp_path / "c10", train_per_class=0)


def test_cifar_missing_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="UNLEARNKIT_DATA.*download=True"):
        get_source("cifar10", root=tmp_path, download=False)


def test_cifar_offline_download_says_where_to_put_files(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(FileNotFoundError, match=r"downloading CIFAR-10 failed .*no CIFAR-10 found under"):
        get_source("cifar10", root=tmp_path / "empty")


def test_cifar_wrong_image_size_is_named(tmp_path):
    from PIL import Image

    make_image_folder(tmp_path / "c10")
    bad = tmp_path / "c10" / "train" / "cat" / "0001.png"
    Image.new("RGB", (64, 64)).save(bad)
    with pytest.raises(ValueError, match="0001.png is 64x64, expected 32x32"):
        get_source("cifar10", root=tmp_path / "c10", cache=False, progress=False)


# --- CIFAR-10 from UNLEARNKIT_DATA ----------------------------------------------------------

_ENV_ROOT = os.environ.get("UNLEARNKIT_DATA", "")
_REAL = cifar_mod.find_cifar10(_ENV_ROOT) if _ENV_ROOT else None
needs_cifar10 = pytest.mark.skipif(
    _REAL is None, reason=f"UNLEARNKIT_DATA={_ENV_ROOT!r} does not hold CIFAR-10 (see data/README.md)")


@pytest.mark.cifar10
@needs_cifar10
def test_real_cifar10_subset(tmp_path):
    src = get_source("cifar10", train_per_class=20, test_per_class=5, cache_dir=tmp_path,
                     progress=False, download=False)
    assert len(src.train) == 200 and len(src.test) == 50
    assert src.classes[:2] == ["airplane", "automobile"] and src.classes[-1] == "truck"
    assert torch.bincount(src.train.labels).tolist() == [20] * 10
    assert_standard_images(src.train)
    assert src.train.images.std() > 20, "real photographs, not blanks"


@pytest.mark.cifar10
@needs_cifar10
def test_real_cifar10_cache_reuse(tmp_path, monkeypatch):
    opts = dict(train_per_class=20, test_per_class=5, cache_dir=tmp_path, progress=False,
                download=False)
    first = get_source("cifar10", **opts)
    if _REAL[0] == "folder":
        assert len(list((tmp_path / "cifar10").glob("*.pt"))) == 2
        monkeypatch.setattr(cifar_mod, "decode_images", lambda *a, **k: 1 / 0)
    again = get_source("cifar10", **opts)
    assert torch.equal(first.train.images, again.train.images)
    assert torch.equal(first.test.labels, again.test.labels)


def test_progress_reaches_the_sources_that_show_bars(tmp_path, capsys):
    """``progress`` silences CIFAR-10's decoding bars and is ignored by digits (no bars)."""
    make_image_folder(tmp_path / "c10")
    get_source("cifar10", root=tmp_path / "c10", cache=False, progress=False)
    assert "decode" not in capsys.readouterr().err
    get_source("cifar10", root=tmp_path / "c10", cache=False, progress=True)
    assert "decode CIFAR-10 train" in capsys.readouterr().err
    assert len(get_source("digits", progress=False, views=1).train) > 0


def test_cifar_train_offset_draws_other_persons(tmp_path):
    make_image_folder(tmp_path / "c10")
    opts = dict(root=tmp_path / "c10", cache_dir=tmp_path / "cache", progress=False)
    first = get_source("cifar10", train_per_class=1, **opts)
    other = get_source("cifar10", train_per_class=1, train_offset=1, **opts)
    both = get_source("cifar10", train_per_class=2, **opts)
    assert torch.bincount(other.train.labels).tolist() == [1] * len(other.classes)
    second = both.train.images[1::2]  # each class's second image, in class order
    assert torch.equal(other.train.images, second), "the images after the first of each class"
    assert not torch.equal(other.train.images, first.train.images)
    assert torch.equal(other.test.images, first.test.images), "the test split is not offset"
    with pytest.raises(ValueError, match="train_offset 3 skips every train image"):
        get_source("cifar10", train_per_class=1, train_offset=3, **opts)
    with pytest.raises(ValueError, match="train_offset must be an integer >= 0"):
        get_source("cifar10", train_offset=-1, **opts)
