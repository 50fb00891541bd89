"""Splits keep their invariants for every scenario, are seeded, and survive a save."""

import numpy as np
import pytest
import torch

from unlearnkit.data import ImageSet, SourceData, Split, get_source, make_split, parse_scenario

SCENARIOS = ["random:0.1", "group:5", "class:3", "class:1,seven", "class:0,2"]


@pytest.fixture(scope="module")
def digits():
    """Digits with 3 views per group (the default)."""
    return get_source("digits")


def grouped_source(n_groups: int = 40, seed: int = 0) -> SourceData:
    """A made-up source of persons: groups of 1-9 images, one label per group."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 10, n_groups)
    groups = np.repeat(np.arange(n_groups) * 7 + 100, sizes)  # non-contiguous person ids
    labels = np.repeat(np.arange(n_groups) % 4, sizes)
    n = len(groups)
    train = ImageSet(images=torch.zeros(n, 3, 32, 32), labels=torch.as_tensor(labels),
                     groups=torch.as_tensor(groups))
    test = ImageSet(images=torch.zeros(5, 3, 32, 32), labels=torch.arange(5) % 4)
    return SourceData("grouped", train, test, classes=["a", "b", "c", "seven"])


def assert_invariants(split: Split, source: SourceData):
    """The invariants, checked here independently of Split.check."""
    n = len(source.train)
    parts = [set(split.retain.tolist()), set(split.forget.tolist()), set(split.validation.tolist())]
    assert sum(len(p) for p in parts) == n and set().union(*parts) == set(range(n))
    assert len(split.forget) > 0 and len(split.retain) > 0
    groups = source.train.groups.numpy()
    assert not set(groups[split.retain]) & set(groups[split.forget])
    labels = source.train.labels.numpy()
    if split.forget_classes:
        assert split.kind == "class"
        assert not set(labels[split.retain]) & set(split.forget_classes)
        assert not set(labels[split.validation]) & set(split.forget_classes)
        assert set(labels[split.forget]) == set(split.forget_classes)
    else:
        assert split.kind == "sample"
    assert np.array_equal(split.test, np.arange(len(source.test)))
    split.check(source)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_invariants_on_digits(digits, scenario):
    if scenario == "class:1,seven":
        scenario = "class:1,7"
    split = make_split(digits, scenario, seed=0)
    assert_invariants(split, digits)
    assert abs(len(split.validation) - 0.1 * len(digits.train)) <= 0.1 * len(digits.train)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_invariants_on_a_grouped_source(scenario):
    source = grouped_source()
    assert_invariants(make_split(source, scenario, seed=2), source)


def test_plain_digits_have_one_group_per_image():
    plain = get_source("digits", views=1)
    split = make_split(plain, "group:15", seed=0)
    assert len(split.forget) == 15
    assert_invariants(split, plain)


def test_group_forget_is_whole_groups_within_training(digits):
    split = make_split(digits, "group:10", seed=1)
    groups = digits.train.groups.numpy()
    chosen = set(groups[split.forget])
    assert len(chosen) == 10
    training = np.concatenate([split.retain, split.forget])
    in_training = training[np.isin(groups[training], list(chosen))]
    assert set(in_training) == set(split.forget)


def test_random_fraction_is_exact_without_views():
    plain = get_source("digits", views=1)
    split = make_split(plain, "random:0.2", seed=0, val_fraction=0.0)
    assert len(split.validation) == 0
    assert len(split.forget) == round(0.2 * len(plain.train))


def test_random_fraction_takes_whole_groups(digits):
    split = make_split(digits, "random:0.2", seed=0)
    target = 0.2 * (len(digits.train) - len(split.validation))
    assert abs(len(split.forget) - target) <= 3, "within one group of the target"
    assert_invariants(split, digits)


def test_class_split_refuses_mixed_class_groups():
    source = grouped_source()
    source.train.labels[0] = (source.train.labels[0] + 1) % 4  # group 100 now holds 2 classes
    with pytest.raises(ValueError, match="straddle"):
        make_split(source, f"class:{int(source.train.labels[1])}", val_fraction=0.0)


def test_seed_fixes_the_split(digits):
    a, b = make_split(digits, "group:5", seed=3), make_split(digits, "group:5", seed=3)
    c = make_split(digits, "group:5", seed=4)
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("retain", "forget", "validation"))
    assert not np.array_equal(a.forget, c.forget)


def test_class_names_and_indices_agree():
    source = grouped_source()
    by_name, by_index = make_split(source, "class:seven,a"), make_split(source, "class:3,0")
    assert by_name.forget_classes == by_index.forget_classes == [0, 3]
    assert np.array_equal(by_name.forget, by_index.forget)


def test_save_load_round_trip(digits, tmp_path):
    split = make_split(digits, "class:2", seed=5)
    split.save(tmp_path / "split.json")
    back = Split.load(tmp_path / "split.json")
    assert back.scenario == "class:2" and back.seed == 5 and back.forget_classes == [2]
    for k in ("retain", "forget", "validation", "test"):
        assert np.array_equal(getattr(back, k), getattr(split, k)) and getattr(back, k).dtype == np.int64
    back.check(digits)


def test_parts_are_image_sets(digits):
    split = make_split(digits, "random:0.1")
    parts = split.parts(digits)
    assert {k: len(v) for k, v in parts.items()} == split.sizes()
    assert torch.equal(parts["forget"].labels, digits.train.labels[split.forget])


def test_given_uses_the_predefined_split(digits):
    pre = {"retain": np.arange(10, len(digits.train)), "forget": np.arange(5),
           "validation": np.arange(5, 10)}
    source = SourceData("d", digits.train, digits.test, digits.classes, predefined=pre)
    split = make_split(source, "given")
    assert np.array_equal(split.forget, np.arange(5)) and np.array_equal(split.validation, np.arange(5, 10))


def test_parse_scenario():
    assert parse_scenario("random:0.1") == ("random", 0.1)
    assert parse_scenario(" group:15 ") == ("group", 15)
    assert parse_scenario("class:3,cat") == ("class", ["3", "cat"])
    assert parse_scenario("given") == ("given", None)


@pytest.mark.parametrize("text", ["nonsense", "random", "random:0", "random:1.5", "random:x",
                                  "group:0", "group:two", "class:", "given:1"])
def test_bad_scenarios_raise(text):
    with pytest.raises(ValueError, match=r"random:FRACTION|between 0 and 1|valid|>= 1"):
        parse_scenario(text)


def test_unknown_scenario_lists_valid_ones():
    with pytest.raises(ValueError, match=r"random:FRACTION, group:K, persons:FRACTION, class:C1,C2,\.\.\., given"):
        parse_scenario("forget-everything")


def test_too_many_groups_raises(digits):
    with pytest.raises(ValueError, match="asks for 100000 groups"):
        make_split(digits, "group:100000")


def test_unknown_class_raises(digits):
    with pytest.raises(ValueError, match="unknown class '10'.*0-9"):
        make_split(digits, "class:10")
    with pytest.raises(ValueError, match="unknown class 'dog'"):
        make_split(digits, "class:dog")


def test_forgetting_every_class_raises():
    with pytest.raises(ValueError, match="retain set empty"):
        make_split(grouped_source(), "class:0,1,2,3")


def test_empty_forget_raises():
    tiny = grouped_source(n_groups=2)
    with pytest.raises(ValueError, match="forget"):
        make_split(tiny, "random:0.01")


def test_group_scenario_needs_groups(digits):
    flat = SourceData("flat", ImageSet(digits.train.images, digits.train.labels), digits.test,
                      digits.classes)
    with pytest.raises(ValueError, match="has no groups"):
        make_split(flat, "group:3")


def test_given_needs_a_predefined_split(digits):
    with pytest.raises(ValueError, match="no predefined split"):
        make_split(digits, "given")


def test_check_catches_broken_splits(digits):
    split = make_split(digits, "group:5")
    groups = digits.train.groups.numpy()
    # move one image of a forget group that has several into retain: the group straddles
    values, counts = np.unique(groups[split.forget], return_counts=True)
    moved = split.forget[groups[split.forget] == values[counts > 1][0]][0]
    broken = Split("group:5", 0, np.append(split.retain, moved),
                   split.forget[split.forget != moved], split.validation, split.test)
    with pytest.raises(ValueError, match="straddle"):
        broken.check(digits)
    overlap = Split("x", 0, split.retain, np.append(split.forget, split.retain[0]),
                    split.validation, split.test)
    with pytest.raises(ValueError, match="disjoint"):
        overlap.check(digits)
    leaky = make_split(digits, "class:4")
    leaky.forget_classes = [4, 5]
    with pytest.raises(ValueError, match=r"forget class\(es\) \[5\]"):
        leaky.check(digits)


def test_load_rejects_other_json(tmp_path):
    (tmp_path / "x.json").write_text('{"scenario": "random:0.1"}')
    with pytest.raises(ValueError, match="not a saved split"):
        Split.load(tmp_path / "x.json")
