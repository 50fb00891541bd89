"""scripts/kaggle_fidelity.py: Kendall tau and the six's differences to finetune, on a
synthetic board whose order is known."""

from __future__ import annotations

import json

import pytest
from script_modules import load_script


@pytest.fixture(scope="module")
def fid():
    return load_script("kaggle_fidelity")


def board(tmp_path, scores: dict, name="lb.json", n=16):
    rows = [{"name": m, "error": None, "score": {"value": v, "low": v - .01, "high": v + .01},
             "minus_baseline": None if m == "finetune" else
             {"value": v - scores.get("finetune", 0), "low": v - scores.get("finetune", 0) - .02,
              "high": v - scores.get("finetune", 0) + .02,
              "moved": abs(v - scores.get("finetune", 0)) > .02}}
            for m, v in scores.items()]
    path = tmp_path / name
    path.write_text(json.dumps({"benchmark": "b", "num_models": n, "rows": rows}))
    return str(path)


def test_the_private_order_gives_tau_one_and_its_reverse_minus_one(fid, tmp_path, capsys):
    same = {m: 0.2 - 0.01 * i for i, m in enumerate(fid.PRIVATE_ORDER[:-1])}
    same["finetune"] = 0.05  # every one of the six 0.1 or more above it
    fid.main([board(tmp_path, same)])
    out = capsys.readouterr().out
    assert "Kendall tau vs the private order: +1.000" in out
    assert "beat finetune at 95%: 6 of 6" in out
    reverse = {m: 0.01 * i for i, m in enumerate(fid.PRIVATE_ORDER)}
    result = fid.fidelity(fid.load_rows([board(tmp_path, reverse)])[0], {})
    assert result["tau"] == pytest.approx(-1.0)


def test_an_alias_scores_a_solution_by_another_row_and_boards_must_agree(fid, tmp_path):
    scores = {m: 0.1 - 0.01 * i for i, m in enumerate(fid.PRIVATE_ORDER)}
    swapped = {**scores, "contrastive_forget": 0.0, "cf_other": 0.2}
    rows, _ = fid.load_rows([board(tmp_path, swapped)])
    assert fid.fidelity(rows, {"contrastive_forget": "cf_other"})["tau"] == pytest.approx(1.0)
    with pytest.raises(SystemExit, match="one benchmark and N"):
        fid.load_rows([board(tmp_path, scores), board(tmp_path, scores, "b.json", n=32)])
    with pytest.raises(SystemExit, match="no scored row"):
        fid.fidelity(fid.load_rows([board(tmp_path, {"finetune": 0.1})])[0], {})


def test_a_row_of_a_later_board_is_named_by_its_board(fid, tmp_path):
    scores = {m: 0.2 - 0.01 * i for i, m in enumerate(fid.PRIVATE_ORDER)}
    first = board(tmp_path, {**scores, "contrastive_forget": 0.0})
    second = board(tmp_path, {"contrastive_forget": 0.3, "finetune": scores["finetune"]}, "b.json")
    rows, _ = fid.load_rows([first, second])
    assert rows["contrastive_forget"]["score"]["value"] == 0.0, "the first board's row"
    out = fid.fidelity(rows, {"contrastive_forget": "contrastive_forget@2"})
    assert out["tau"] == pytest.approx(1.0)
