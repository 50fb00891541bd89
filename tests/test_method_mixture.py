"""mixture: which run goes to which method, that a run is its component's run, the checks
of shares and settings before any work, and the harness's and notebook's config paths."""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import torch
from method_fixtures import dict_batches, one_thread  # noqa: F401

from unlearnkit.benchmarks import load_benchmark, stable_hash
from unlearnkit.harness.pipeline import check_request
from unlearnkit.methods import get_method, resolve_config, run_method, serves
from unlearnkit.methods.mixture import assignment
from unlearnkit.models import build_model

PAIR = {"perturb_finetune": 0.5, "conv_transpose": 0.5}


def _cfg(**values):
    return resolve_config("mixture", values)


@pytest.mark.parametrize("shares", [{"a": 0.5, "b": 0.5}, {"a": 0.25, "b": 0.75},
                                    {"a": 0.2, "b": 0.3, "c": 0.5}, {"a": 1 / 3, "b": 2 / 3}])
def test_every_prefix_of_the_runs_matches_the_shares_within_one(shares):
    runs = assignment(shares, 512)
    counts = Counter()
    for i, name in enumerate(runs):
        counts[name] += 1
        for m, share in shares.items():
            assert abs(counts[m] - share * (i + 1)) <= 1, (i, m, counts)
    assert sum(counts.values()) == 512


def test_the_order_the_shares_are_written_in_changes_nothing():
    """Same content, same cache entry (the hash sorts keys): so the runs must agree too."""
    a, b = {"x": 0.5, "y": 0.5}, {"y": 0.5, "x": 0.5}
    assert assignment(a, 64) == assignment(b, 64)
    assert stable_hash(_cfg(shares={"perturb_finetune": 0.5, "conv_transpose": 0.5}).to_dict()) \
        == stable_hash(_cfg(shares={"conv_transpose": 0.5, "perturb_finetune": 0.5}).to_dict())


def test_component_of_a_run_is_its_place_in_the_assignment():
    cfg = _cfg(shares={"perturb_finetune": 0.25, "conv_transpose": 0.75})
    expected = assignment(cfg.shares, 40)
    assert [cfg.component(i) for i in range(40)] == expected
    assert Counter(expected) == {"conv_transpose": 30, "perturb_finetune": 10}
    with pytest.raises(ValueError, match=">= 0"):
        cfg.component(-1)


def _retain():
    return dict_batches([i % 10 for i in range(48)], seed=3, size=16)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_run_is_exactly_its_components_run_with_the_same_seed(seed):
    cfg = _cfg(shares=PAIR, settings={"perturb_finetune": {"epochs": 1},
                                      "conv_transpose": {"epochs": 1}})
    torch.manual_seed(0)
    original = build_model("small_cnn").state_dict()
    nets = []
    for name, c in (("mixture", cfg), (cfg.component(seed), cfg.component_config(cfg.component(seed)))):
        net = build_model("small_cnn")
        net.load_state_dict(copy.deepcopy(original))
        nets.append(run_method(name, net, _retain(), [], None, seed=seed, cfg=c).state_dict())
    assert all(torch.equal(nets[0][k], nets[1][k]) for k in nets[0])
    assert any(not torch.equal(nets[0][k], original[k]) for k in original)


def test_settings_reach_the_component():
    cfg = _cfg(shares=PAIR, settings={"perturb_finetune": {"epochs": 2, "noise": 0.1}})
    pf = cfg.component_config("perturb_finetune")
    assert (pf.epochs, pf.noise) == (2, 0.1)
    assert cfg.component_config("conv_transpose") == get_method("conv_transpose").config()


@pytest.mark.parametrize(("values", "message"), [
    ({"shares": {"perturb_finetune": 0.5, "conv_transpose": 0.4}}, "sum to 0.9, not 1"),
    ({"shares": {"perturb_finetune": 0.5, "no_such_method": 0.5}}, "unknown method 'no_such_method'"),
    ({"shares": {"mixture": 1.0}}, "cannot contain itself"),
    ({"shares": {"perturb_finetune": 1.5, "conv_transpose": -0.5}}, r"must be a number in \(0, 1\]"),
    ({"shares": {}}, "non-empty mapping"),
    ({"shares": "perturb_finetune"}, "non-empty mapping"),
    ({"shares": PAIR, "settings": {"bad_teacher": {"lr": 1e-3}}}, "not among the shares"),
    ({"shares": PAIR, "settings": {"perturb_finetune": {"no_field": 1}}}, "no_field"),
    ({"shares": PAIR, "settings": {"perturb_finetune": {"epochs": 0}}}, "epochs"),
])
def test_bad_shares_and_settings_are_refused_when_the_config_is_built(values, message):
    with pytest.raises(ValueError, match=message):
        _cfg(**values)


def test_a_mixture_serves_what_all_its_components_serve():
    both = _cfg(shares={"bad_teacher": 0.5, "linear_filtration": 0.5})
    assert serves("mixture", both) == ("class",)
    assert set(serves("mixture", _cfg(shares=PAIR))) == {"sample", "class"}
    net = build_model("small_cnn")
    with pytest.raises(ValueError, match="mixture serves only class removal"):
        run_method("mixture", net, _retain(), _retain(), None, seed=0, cfg=both,
                   scenario_kind="sample")


def test_the_harness_refuses_a_mixture_that_cannot_serve_its_scenario_before_work():
    bench = load_benchmark("digits", num_models=4)
    with pytest.raises(ValueError, match="mixture serves only class removal"):
        check_request(bench, ["mixture"],
                      {"shares": {"bad_teacher": 0.5, "linear_filtration": 0.5}})
    cfg = check_request(bench, ["mixture"], {"shares": PAIR})["mixture"]
    assert cfg.shares == PAIR


def test_an_empty_forget_set_is_refused_only_when_a_component_reads_it():
    net = build_model("small_cnn")
    no_forget = _cfg(shares=PAIR, settings={"perturb_finetune": {"epochs": 1},
                                           "conv_transpose": {"epochs": 1}})
    run_method("mixture", net, _retain(), [], None, seed=0, cfg=no_forget)  # runs
    with_forget = _cfg(shares={"perturb_finetune": 0.5, "bad_teacher": 0.5})
    with pytest.raises(ValueError, match="forget loader is empty"):
        run_method("mixture", net, _retain(), [], None, seed=0, cfg=with_forget)


def test_the_notebooks_config_cell_accepts_a_mixture():
    from unlearnkit.kaggle.runtime.settings import check_method

    cfg = check_method("mixture", {"shares": {"reinit_lowgrad": 0.5, "perturb_finetune": 0.5}})
    assert [cfg.component(i) for i in range(4)] == assignment(cfg.shares, 4)
    with pytest.raises(ValueError, match="sample-level"):
        check_method("mixture", {"shares": {"bad_teacher": 0.5, "linear_filtration": 0.5}})
    with pytest.raises(ValueError, match="sum to"):
        check_method("mixture", {"shares": {"reinit_lowgrad": 0.7, "perturb_finetune": 0.5}})
