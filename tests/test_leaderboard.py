"""The leaderboard through the real CLI, on a tiny digits benchmark."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import yaml
from tiny_bench import tiny_bench

from unlearnkit.cli import main
from unlearnkit.methods import _REGISTRY, MethodConfig, register_method

TINY = tiny_bench(4)


@dataclass
class CrashConfig(MethodConfig):
    pass


@pytest.fixture()
def crashing_method():
    """A registered method that always raises: its row must fail, the others go on."""
    def crash(net, retain_loader, forget_loader, val_loader, *, seed, cfg):
        raise RuntimeError("boom on purpose")

    register_method("_test_crash", config=CrashConfig, summary="test only")(crash)
    yield "_test_crash"
    _REGISTRY.pop("_test_crash", None)


def _run(tmp_path, *extra):
    bench = tmp_path / "tiny.yaml"
    bench.write_text(yaml.safe_dump(TINY))
    return main(["leaderboard", "--bench", str(bench), "--quiet", "--cache",
                 str(tmp_path / "cache"), "--out", str(tmp_path / "lb"), *extra])


def test_leaderboard_ranks_methods_beside_the_oracles_and_keeps_a_failed_row(
        tmp_path, crashing_method):
    code = _run(tmp_path, "--methods", f"finetune,random_label,{crashing_method}",
                "--set", "random_label.max_steps=3", "--set", "finetune.epochs=1")
    assert code == 1  # a failed row makes the command fail, after writing everything
    lb = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
    names = [r["name"] for r in lb["rows"]]
    assert set(names) == {"oracle_retrain", "oracle_original", "finetune", "random_label",
                          crashing_method}
    scored = [r for r in lb["rows"] if not r["error"]]
    assert [r["score"]["value"] for r in scored] == sorted(
        (r["score"]["value"] for r in scored), reverse=True)
    for r in scored:
        assert r["score"]["low"] <= r["score"]["value"] <= r["score"]["high"]
    failed = next(r for r in lb["rows"] if r["name"] == crashing_method)
    assert "boom on purpose" in failed["error"]
    assert next(r for r in lb["rows"] if r["name"] == "random_label")["settings"] == \
        {"max_steps": 3}
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "FAILED" in md and "oracle gap" in md
    assert (tmp_path / "lb" / "leaderboard.png").stat().st_size > 0
    _check_mixture_reuses_cached_runs(tmp_path)  # on the same cache: no second reference set


def test_a_method_that_does_not_serve_the_scenario_fails_before_any_training(tmp_path, capsys):
    assert _run(tmp_path, "--methods", "linear_filtration") == 2
    assert "linear_filtration serves only class removal" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_overrides_for_a_method_not_on_the_board_are_refused(tmp_path, capsys):
    assert _run(tmp_path, "--methods", "finetune", "--set", "unsir.noise_steps=3") == 2
    assert "not on this leaderboard" in capsys.readouterr().err


def _check_mixture_reuses_cached_runs(tmp_path):
    """Run i of a mixture is its component's run i: the harness copies the cached entry
    instead of running it again, so the mixture's row costs no training."""
    from unlearnkit.methods.mixture import assignment

    runs = tmp_path / "cache"
    before = {p: p.stat().st_mtime_ns for p in runs.rglob("*.npz")}
    shares = '{"finetune": 0.5, "random_label": 0.5}'
    settings = '{"finetune": {"epochs": 1}, "random_label": {"max_steps": 3}}'
    assert _run(tmp_path, "--methods", "mixture", "--set", f"mixture.shares={shares}",
                "--set", f"mixture.settings={settings}") == 0
    mixed = sorted(p for p in runs.rglob("*.npz") if "/runs/mixture/" in str(p))
    assert len(mixed) == 4
    order = assignment({"finetune": 0.5, "random_label": 0.5}, 4)
    for path in mixed:
        twin = next(p for p in before if f"/runs/{order[int(path.stem)]}/" in str(p)
                    and p.name == path.name)
        assert path.read_bytes() == twin.read_bytes()
    assert all(p.stat().st_mtime_ns == t for p, t in before.items()), "a cached run was redone"
    lb = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
    row = next(r for r in lb["rows"] if r["name"] == "mixture")
    assert not row["error"] and row["score"]["low"] <= row["score"]["value"]


def test_baseline_gives_every_other_row_its_paired_difference(tmp_path):
    code = _run(tmp_path, "--methods", "finetune,random_label", "--baseline", "finetune",
                "--set", "random_label.max_steps=3", "--set", "finetune.epochs=1")
    assert code == 0
    lb = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
    rows = {r["name"]: r for r in lb["rows"]}
    assert lb["baseline"] == "finetune" and rows["finetune"]["minus_baseline"] is None
    assert rows["oracle_original"]["minus_baseline"] is not None, "oracles are compared too"
    diff = rows["random_label"]["minus_baseline"]
    expected = rows["random_label"]["score"]["value"] - rows["finetune"]["score"]["value"]
    assert diff["value"] == pytest.approx(expected, abs=1e-12)
    assert diff["low"] <= diff["value"] <= diff["high"]
    assert diff["moved"] == (not diff["low"] <= 0.0 <= diff["high"])
    assert "minus finetune" in (tmp_path / "lb" / "leaderboard.md").read_text()


def test_a_baseline_not_on_the_board_is_refused_before_any_training(tmp_path, capsys):
    code = _run(tmp_path, "--methods", "random_label", "--baseline", "finetune")
    assert code == 2
    assert "--baseline 'finetune' is not on this leaderboard" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.npz"))
