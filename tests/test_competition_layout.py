"""The competition layout: export then read back gives identical data; bad folders say why.

Also the checkpoint round trip (``original_model.pth`` travels with the layout).
"""

import numpy as np
import pandas as pd
import pytest
import torch

from unlearnkit.data import (
    ImageSet,
    SourceData,
    export_competition,
    get_source,
    make_split,
    read_competition,
)
from unlearnkit.data import competition as comp
from unlearnkit.models import build_model, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def small_digits():
    """A slice of digits (3 views per group): 300 train and 60 test images."""
    src = get_source("digits")
    return SourceData("digits", src.train.subset(np.arange(300)), src.test.subset(np.arange(60)),
                      src.classes)


@pytest.fixture(scope="module")
def exported(small_digits, tmp_path_factory):
    """small_digits cut by group:4, exported once for the read-only tests."""
    split = make_split(small_digits, "group:4", seed=1)
    out = tmp_path_factory.mktemp("export") / "competition"
    export_competition(small_digits, split, out, progress=False)
    return split, out


def assert_same(a: ImageSet, b: ImageSet, ids: bool = True):
    """Identical images, labels, groups (and ids)."""
    assert torch.equal(a.images, b.images)
    assert torch.equal(a.labels, b.labels)
    assert torch.equal(a.groups, b.groups)
    if ids:
        assert a.ids == b.ids


def test_round_trip_is_exact(small_digits, exported):
    split, out = exported
    back = read_competition(out, progress=False)
    assert back.classes == small_digits.classes
    want = split.parts(small_digits)
    for name in ("retain", "forget", "validation"):
        assert_same(back.train.subset(back.predefined[name]), want[name])
    assert_same(back.test, want["test"])
    given = make_split(back, "given")
    assert given.sizes() == split.sizes()
    assert given.kind == "sample"


def test_layout_files(exported):
    split, out = exported
    assert {p.name for p in out.iterdir()} == {"retain.csv", "forget.csv", "validation.csv",
                                               "test.csv", "images", "classes.json"}
    table = pd.read_csv(out / "forget.csv", dtype={"image_id": str})
    assert list(table.columns) == ["image_id", "age_group", "age", "person_id"]
    assert len(table) == len(split.forget) and table["person_id"].nunique() == 4
    person, n = table["image_id"][0].split("-")
    assert (out / "images" / person / f"{n}.png").is_file()
    assert int(person) == table["person_id"][0]


def test_read_through_the_data_root(exported, monkeypatch):
    _, out = exported
    monkeypatch.setenv("UNLEARNKIT_DATA", str(out.parent))
    src = get_source("competition", progress=False)
    assert src.name == "competition" and len(src.train) == 300
    assert get_source("competition", root=out, progress=False).predefined["forget"].size > 0


def test_round_trip_without_groups_or_ids(tmp_path):
    g = torch.Generator().manual_seed(0)
    train = ImageSet(torch.randint(0, 256, (20, 3, 32, 32), generator=g).float(), torch.arange(20) % 10)
    test = ImageSet(torch.randint(0, 256, (4, 3, 32, 32), generator=g).float(), torch.arange(4))
    source = SourceData("plain", train, test, [f"c{i}" for i in range(10)])
    split = make_split(source, "class:c1", seed=0, val_fraction=0.2)
    export_competition(source, split, tmp_path / "out", progress=False)
    back = read_competition(tmp_path / "out", progress=False)
    for name in ("retain", "forget", "validation"):
        part = back.train.subset(back.predefined[name])
        index = getattr(split, name)
        assert torch.equal(part.images, train.images[index])
        assert torch.equal(part.groups, torch.as_tensor(index)), "person id = pool index"
    assert back.test.groups.tolist() == [20, 21, 22, 23]
    assert back.classes[1] == "c1"


def test_no_test_csv_gives_an_empty_test_set(small_digits, tmp_path):
    split = make_split(small_digits, "random:0.1")
    split.test = np.zeros(0, np.int64)
    export_competition(small_digits, split, tmp_path / "c", progress=False)
    assert not (tmp_path / "c" / "test.csv").exists()
    back = read_competition(tmp_path / "c", progress=False)
    assert len(back.test) == 0 and back.test.images.shape == (0, 3, 32, 32)


# --- checkpoints ---------------------------------------------------------------------------


def test_original_model_round_trip(small_digits, tmp_path):
    torch.manual_seed(0)
    net = build_model("small_cnn")
    split = make_split(small_digits, "random:0.1")
    export_competition(small_digits, split, tmp_path / "c", original_state=net, progress=False)
    path = comp.original_model_path(tmp_path / "c")
    assert path == tmp_path / "c" / "original_model.pth"
    loaded = load_checkpoint(path, "small_cnn")
    for (k, a), b in zip(net.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="another architecture"):
        load_checkpoint(path, "resnet18")


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(1)
    net = build_model("small_cnn")
    save_checkpoint(net, tmp_path / "m.pth")
    back = load_checkpoint(tmp_path / "m.pth", "small_cnn")
    x = torch.rand(2, 3, 32, 32) * 255
    assert torch.equal(net.eval()(x), back.eval()(x))
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pth", "small_cnn")


# --- bad input -----------------------------------------------------------------------------


def copy_of(out, tmp_path):
    """A private copy of the exported folder to break."""
    import shutil

    return shutil.copytree(out, tmp_path / "broken")


def test_missing_column_is_named(exported, tmp_path):
    folder = copy_of(exported[1], tmp_path)
    table = pd.read_csv(folder / "forget.csv").drop(columns=["person_id"])
    table.to_csv(folder / "forget.csv", index=False)
    with pytest.raises(ValueError, match=r"forget.csv lacks column\(s\) \['person_id'\]"):
        read_competition(folder, progress=False)


def test_missing_image_is_named(exported, tmp_path):
    folder = copy_of(exported[1], tmp_path)
    image_id = pd.read_csv(folder / "validation.csv", dtype={"image_id": str})["image_id"][0]
    victim = comp.image_path(folder, image_id)
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=f"{victim.parent.name}/{victim.name}.*validation.csv"):
        read_competition(folder, progress=False)


def test_missing_csv_is_named(exported, tmp_path):
    folder = copy_of(exported[1], tmp_path)
    (folder / "validation.csv").unlink()
    with pytest.raises(FileNotFoundError, match="validation.csv not found"):
        read_competition(folder, progress=False)


def test_bad_image_id(exported, tmp_path):
    folder = copy_of(exported[1], tmp_path)
    table = pd.read_csv(folder / "retain.csv")
    table.loc[0, "image_id"] = "noperson"
    table.to_csv(folder / "retain.csv", index=False)
    with pytest.raises(ValueError, match="retain.csv line 2: image_id is 'noperson', expected "
                                         "'<person>-<n>'"):
        read_competition(folder, progress=False)


def test_missing_folder_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="UNLEARNKIT_DATA.*export_competition"):
        read_competition(tmp_path, progress=False)


def test_existing_destination_needs_overwrite(small_digits, exported, tmp_path):
    split, out = exported
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_competition(small_digits, split, out, progress=False)
    target = copy_of(out, tmp_path)
    other = make_split(small_digits, "group:2", seed=9)
    export_competition(small_digits, other, target, overwrite=True, progress=False)
    assert len(read_competition(target, progress=False).predefined["forget"]) == len(other.forget)
    assert [p.name for p in tmp_path.iterdir()] == ["broken"], "no leftovers"


def test_failed_export_leaves_nothing(small_digits, tmp_path, monkeypatch):
    split = make_split(small_digits, "random:0.1")

    def crash(folder, name, *args):
        if name == "forget":
            raise KeyboardInterrupt
        return real(folder, name, *args)

    real = comp._write_part
    monkeypatch.setattr(comp, "_write_part", crash)
    with pytest.raises(KeyboardInterrupt):
        export_competition(small_digits, split, tmp_path / "c", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_export_checks_the_split(small_digits, tmp_path):
    split = make_split(small_digits, "random:0.1")
    split.forget = split.forget[:0]
    with pytest.raises(ValueError, match="disjoint"):
        export_competition(small_digits, split, tmp_path / "c", progress=False)
