"""The methods' parts checked against their formulas, and the registry's errors.

No trained model here: hand-made tensors, random networks, a few random images.
"""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
import torch.nn.functional as F

import unlearnkit.methods as registry
from unlearnkit.methods import (
    get_method,
    list_methods,
    register_method,
    resolve_config,
    run_method,
    serves,
)
from unlearnkit.methods._common import (
    MethodConfig,
    sample_per_class,
    shuffled_batches,
)
from unlearnkit.methods.bad_teacher import bad_teacher_loss
from unlearnkit.methods.linear_filtration import (
    filtration_matrix,
    filtration_targets,
    fold_into_head,
)
from unlearnkit.methods.random_label import random_other_labels
from unlearnkit.methods.unsir import learn_noise
from unlearnkit.models import build_model, load_state

MODES = ("naive", "normalization", "randomization", "zeroing")
FORGET_SETS = ([0], [3], [2, 7], [0, 1, 9])


@pytest.fixture(autouse=True)
def one_thread():
    """One CPU thread: fastest on a shared 2-core machine, and reproducible."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _random_logits(K: int = 10, seed: int = 0) -> torch.Tensor:
    """mean_logits [K, K] (row c = class c's mean logits): random, invertible."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(K, K, generator=g, dtype=torch.float64) + 3 * torch.eye(K, dtype=torch.float64)


def _hand_targets(A: torch.Tensor, forget: list[int], mode: str) -> torch.Tensor:
    """B from the paper's description, written independently of the method's code."""
    kept = [c for c in range(A.shape[0]) if c not in forget]
    B = A[kept].clone()
    block_mean = A[kept][:, kept].mean()
    for c in forget:
        if mode == "normalization":
            B[:, c] = B[:, c] - B[:, c].mean() + block_mean
        elif mode == "zeroing":
            B[:, c] = 0
    return B


# ---- linear filtration --------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("forget", FORGET_SETS)
def test_filtration_matrix_maps_class_means_to_targets(mode, forget):
    """F A = B exactly (float64) for every mode and forget set; kept means are unchanged."""
    mean_logits = _random_logits(seed=len(forget))
    A = mean_logits.T  # column c = class c's mean logits
    kept = [c for c in range(10) if c not in forget]
    Fm = filtration_matrix(mean_logits, forget, mode, torch.Generator().manual_seed(5))
    assert Fm.shape == (10 - len(forget), 10) and Fm.dtype == torch.float64
    if mode == "randomization":
        B = filtration_targets(mean_logits, forget, mode, torch.Generator().manual_seed(5))
        assert not torch.allclose(B[:, forget], A[kept][:, forget])
    else:
        B = _hand_targets(A, forget, mode)
    torch.testing.assert_close(Fm @ A, B, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close((Fm @ A)[:, kept], A[kept][:, kept], rtol=1e-9, atol=1e-9)


def test_naive_filtration_is_identity_rows():
    """'naive' drops the forgotten logits and nothing else."""
    Fm = filtration_matrix(_random_logits(), [2, 5], "naive")
    kept = [c for c in range(10) if c not in (2, 5)]
    assert torch.equal(Fm, torch.eye(10, dtype=torch.float64)[kept])


def test_filtration_rejects_bad_input():
    """A singular A, an unknown mode or no forget class give clear errors."""
    singular = torch.ones(10, 10, dtype=torch.float64)
    with pytest.raises(ValueError, match="singular"):
        filtration_matrix(singular, [0], "normalization")
    with pytest.raises(ValueError, match="mode"):
        filtration_matrix(_random_logits(), [0], "bogus")
    with pytest.raises(ValueError, match="empty"):
        filtration_matrix(_random_logits(), [], "zeroing")


def test_fold_into_head_applies_filter_to_logits():
    """After folding, kept logits = F @ old logits; removed classes sit at the constant."""
    torch.manual_seed(0)
    net = build_model("small_cnn").eval()
    x = torch.rand(4, 3, 32, 32) * 255
    with torch.no_grad():
        before = net(x).double()  # [4, 10]
    Fm = filtration_matrix(_random_logits(), [1, 4], "normalization")
    fold_into_head(net.fc, Fm, [1, 4], removed_logit=-50.0)
    with torch.no_grad():
        after = net(x).double()
    kept = [c for c in range(10) if c not in (1, 4)]
    torch.testing.assert_close(after[:, kept], before @ Fm.T, rtol=1e-4, atol=1e-4)
    assert torch.all(after[:, [1, 4]] == -50.0)


# ---- bad teacher ------------------------------------------------------------------

def test_bad_teacher_loss_is_the_kl_formula():
    """Equals KL(target || student) by hand, and F.kl_div with its default 'mean'."""
    student = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    good = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    bad = torch.tensor([[0.0, 0.0, 0.0], [1.0, -1.0, 4.0]])
    flags = torch.tensor([1.0, 0.0])
    for T in (1.0, 2.0):
        target = torch.stack([F.softmax(bad[0] / T, 0), F.softmax(good[1] / T, 0)])
        q = F.softmax(student / T, 1)
        kl = (target * (target.log() - q.log())).sum()  # summed over batch and classes
        torch.testing.assert_close(bad_teacher_loss(student, good, bad, flags, T), kl / 6)
        torch.testing.assert_close(
            bad_teacher_loss(student, good, bad, flags, T, reduction="batchmean"), kl / 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            official = F.kl_div(F.log_softmax(student / T, 1), target)
        torch.testing.assert_close(bad_teacher_loss(student, good, bad, flags, T), official)


# ---- UNSIR --------------------------------------------------------------------------

@pytest.mark.parametrize(("center", "scale"), [(0.0, 1.0), (127.5, 64.0)])
def test_learn_noise_leaves_the_net_alone_and_ascends(center, scale):
    """Pure error maximisation (no L2) raises CE; the net's weights, grads and mode stay.

    (The published loss with its L2 term is checked on a trained model in test_methods.)
    """
    torch.manual_seed(0)
    net = build_model("small_cnn").train()
    labels = torch.full((16,), 3)
    kwargs = dict(center=center, scale=scale, batch_size=16, l2_weight=0.0)
    start = learn_noise(net, labels, steps=0, generator=torch.Generator().manual_seed(1), **kwargs)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    noise = learn_noise(net, labels, steps=15, generator=torch.Generator().manual_seed(1), **kwargs)
    assert net.training, "learn_noise restores the network's mode"
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items()), "net changed"
    assert all(p.grad is None for p in net.parameters())
    with torch.no_grad():
        net.eval()
        loss_start = F.cross_entropy(net(start), labels)
        loss_noise = F.cross_entropy(net(noise), labels)
    assert noise.shape == (16, 3, 32, 32)
    assert loss_noise > loss_start


# ---- shared helpers -----------------------------------------------------------------

def _toy_loader(n: int = 50, batch: int = 8):
    """A list of (x, y) batches: image i is filled with the value i; labels i % 5."""
    x = torch.arange(n, dtype=torch.float32)[:, None, None, None].expand(n, 3, 32, 32)
    y = torch.arange(n) % 5
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)]


def test_shuffled_batches_keep_every_example_and_depend_on_seed():
    """Same examples (the loader's batch size), another order per seed."""
    def ids(seed):
        gen = torch.Generator().manual_seed(seed)
        out = list(shuffled_batches(_toy_loader(), torch.device("cpu"), gen, buffer_size=16))
        assert all(len(y) <= 8 for _, y in out)
        return torch.cat([x[:, 0, 0, 0] for x, _ in out]).long()

    a, b = ids(0), ids(1)
    assert sorted(a.tolist()) == list(range(50)) == sorted(b.tolist())
    assert not torch.equal(a, b)


def test_sample_per_class_caps_each_class():
    """At most k per class, and at most ceil(max_fraction * count)."""
    gen = torch.Generator().manual_seed(0)
    x, y = sample_per_class(_toy_loader(), torch.device("cpu"), 4, gen)
    assert torch.bincount(y).tolist() == [4] * 5
    assert torch.equal(x[:, 0, 0, 0].long() % 5, y)
    x, y = sample_per_class(_toy_loader(), torch.device("cpu"), 100, gen, max_fraction=0.5)
    assert torch.bincount(y).tolist() == [5] * 5


def test_random_other_labels_never_keep_the_label():
    """Every relabelled example gets a different class, all classes reachable."""
    y = torch.arange(1000) % 10
    new = random_other_labels(y, 10, torch.Generator().manual_seed(0))
    assert not torch.any(new == y)
    assert set(new.tolist()) == set(range(10))


# ---- the registry -------------------------------------------------------------------

def _tiny_loaders(classes_in_retain=range(1, 10), forget_class=0):
    """retain / forget lists of one dict batch each: two random images per class."""
    def batch(labels):
        labels = torch.tensor(list(labels)).repeat_interleave(2)
        return {"image": torch.rand(len(labels), 3, 32, 32) * 255, "age_group": labels}
    return [batch(classes_in_retain)], [batch([forget_class])]


def test_registry_lists_the_required_methods():
    """The seed methods and the baselines are registered, with sane specs."""
    names = list_methods()
    for name in ("bad_teacher", "linear_filtration", "unsir", "finetune", "neggrad_plus",
                 "random_label"):
        assert name in names
        spec = get_method(name)
        assert spec.name == name and spec.summary and dataclasses.is_dataclass(spec.config)
    assert get_method("linear_filtration").scenarios == ("class",)


def test_unknown_method_lists_the_valid_names():
    with pytest.raises(ValueError) as err:
        get_method("no_such_method")
    assert all(name in str(err.value) for name in list_methods())


def test_unknown_hyperparameter_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid: .*lr") as err:
        resolve_config("finetune", {"learning_rate": 0.1})
    assert "learning_rate" in str(err.value)
    with pytest.raises(ValueError, match="mode"):
        resolve_config("linear_filtration", {"mode": "bogus"})
    with pytest.raises(ValueError, match="integer"):
        resolve_config("finetune", {"epochs": 1.5})


@pytest.mark.parametrize(("name", "field", "value"), [
    ("finetune", "epochs", -1),
    ("finetune", "lr", -0.1),
    ("finetune", "lr", 0.0),
    ("unsir", "noise_steps", -5),
    ("bad_teacher", "retain_fraction", 1.5),
    ("neggrad_plus", "alpha", float("nan")),
    ("linear_filtration", "max_fraction", 0.0),
])
def test_out_of_range_hyperparameters_are_refused_with_the_fields_doc(name, field, value):
    """The field's declared range decides; the message names method, field, value and doc."""
    with pytest.raises(ValueError) as err:
        resolve_config(name, {field: value})
    text = str(err.value)
    assert f"{name}.{field} = {value!r}" in text
    doc = dict((f, d) for f, _, _, d in get_method(name).config.describe())[field]
    assert doc and doc in text, text


@pytest.mark.parametrize("name", sorted(list_methods()))
def test_every_field_is_documented_and_its_default_in_range(name):
    """The dataclass is the single source: each field has a docstring, defaults pass."""
    rows = get_method(name).config.describe()
    undocumented = [f for f, _, _, doc in rows if not doc]
    assert not undocumented, f"{name}: fields without a docstring: {undocumented}"
    assert resolve_config(name) == get_method(name).config()  # no YAML changes a default
    get_method(name).config.quick()  # the quick values are valid too


def test_resolution_order_defaults_yaml_overrides(tmp_path):
    """Defaults < the YAML file < the overrides; a missing explicit file is an error."""
    path = tmp_path / "finetune.yaml"
    path.write_text("lr: 1e-2  # a string to PyYAML, coerced\nepochs: 4\n")
    cfg = resolve_config("finetune", {"epochs": 2}, config_path=path)
    assert cfg.lr == 0.01 and cfg.epochs == 2 and cfg.momentum == 0.9
    assert resolve_config("finetune", config_path=tmp_path).epochs == 4
    path.write_text("lr_typo: 1\n")
    with pytest.raises(ValueError, match="YAML"):
        resolve_config("finetune", config_path=path)
    with pytest.raises(FileNotFoundError):
        resolve_config("finetune", config_path=tmp_path / "missing.yaml")


def test_run_method_refuses_a_config_of_another_method():
    net = build_model("small_cnn")
    retain, forget = _tiny_loaders()
    with pytest.raises(TypeError, match="FinetuneConfig"):
        run_method("finetune", net, retain, forget, None, seed=0,
                   cfg=resolve_config("neggrad_plus"))


def test_class_only_method_refuses_sample_level_forgetting():
    """Named scenario or not, linear filtration (and UNSIR's class mode) refuse it."""
    net = build_model("small_cnn")
    retain, forget = _tiny_loaders(classes_in_retain=range(10), forget_class=0)
    with pytest.raises(ValueError, match="linear_filtration serves only class removal"):
        run_method("linear_filtration", net, retain, forget, None, seed=0, scenario_kind="sample")
    with pytest.raises(ValueError, match=r"forget class\(es\) \[0\] also occur in the retain"):
        run_method("linear_filtration", net, retain, forget, None, seed=0)
    with pytest.raises(ValueError, match="also occur in the retain"):
        run_method("unsir", net, retain, forget, None, seed=0,
                   cfg=resolve_config("unsir", {"mode": "class", "noise_steps": 0}))
    with pytest.raises(ValueError, match="scenario_kind"):
        run_method("finetune", net, retain, forget, None, seed=0, scenario_kind="people")


def test_empty_forget_loader_is_refused():
    net = build_model("small_cnn")
    retain, _ = _tiny_loaders()

    class NoLen:
        def __iter__(self):
            return iter(())

    for empty in ([], NoLen()):
        with pytest.raises(ValueError, match="forget loader is empty"):
            run_method("finetune", net, retain, empty, None, seed=0)


def test_a_registered_method_is_run_with_its_hyperparameters():
    """register_method + run_method: resolution, seeding and duplicate-name protection."""
    @dataclasses.dataclass
    class ScaleConfig(MethodConfig):
        factor: float = 2.0
        """Multiply the head's bias by this."""

    seen = {}

    def scale_head(net, retain_loader, forget_loader, val_loader, *, seed, cfg):
        seen.update(seed=seed, factor=cfg.factor, draw=torch.rand(1).item())
        with torch.no_grad():
            net.fc.bias.mul_(cfg.factor)
        return net.eval()

    register_method("_test_scale", config=ScaleConfig, summary="test only")(scale_head)
    try:
        assert "_test_scale" in list_methods()
        net = build_model("small_cnn")
        bias = net.fc.bias.detach().clone()
        retain, forget = _tiny_loaders()
        run_method("_test_scale", net, retain, forget, None, seed=7,
                   cfg=resolve_config("_test_scale", {"factor": 3.0}))
        torch.manual_seed(7)
        assert seen == {"seed": 7, "factor": 3.0, "draw": torch.rand(1).item()}
        torch.testing.assert_close(net.fc.bias.detach(), 3 * bias)
        with pytest.raises(ValueError, match="taken"):
            register_method("_test_scale", config=ScaleConfig)(lambda *a, **k: None)
    finally:
        registry._REGISTRY.pop("_test_scale", None)


@pytest.mark.parametrize("name", [m for m in list_methods() if "class" in serves(m)])
def test_resnet18_checkpoint_stays_loadable(name):
    """The competition's network keeps its architecture and 10 outputs (every method,
    with its quick settings, on a class-removal toy set)."""
    torch.manual_seed(0)
    net = build_model("resnet18", num_classes=10)
    retain, forget = _tiny_loaders()
    run_method(name, net, retain, forget, None, seed=0, scenario_kind="class",
               cfg=get_method(name).config.quick())
    assert not net.training
    fresh = load_state(build_model("resnet18", num_classes=10), net.state_dict())
    with torch.no_grad():
        out = fresh.eval()(torch.rand(2, 3, 32, 32) * 255)
    assert out.shape == (2, 10) and torch.isfinite(out).all()


class _KaggleLikeSet(torch.utils.data.Dataset):
    """Items shaped like the competition notebook's dataset: dicts with string ids."""

    def __init__(self, labels):
        self.labels = list(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"image": torch.full((3, 32, 32), float(i)), "image_id": f"7-{i}",
                "age_group": self.labels[i], "age": 30, "person_id": 7}


@pytest.mark.parametrize("name", [m for m in list_methods() if "sample" in serves(m)])
def test_torch_dataloader_of_dicts(name):
    """A torch DataLoader of dict items (the Kaggle notebook's loaders) works as it is."""
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    net = build_model("small_cnn")
    retain = DataLoader(_KaggleLikeSet([i % 10 for i in range(40)]), batch_size=16, shuffle=True)
    forget = DataLoader(_KaggleLikeSet([0, 1, 0, 1]), batch_size=16, shuffle=True)
    run_method(name, net, retain, forget, None, seed=0, cfg=get_method(name).config.quick())
    assert not net.training
