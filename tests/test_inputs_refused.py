"""Issue 30, principle 8: accepted nonsense is refused, and messages say what to do.

Competition-layout folders with duplicated rows, an image in two splits, a person_id that
contradicts its image_id or a person in retain and forget; ``--device cuda`` without a
GPU; ``--workers`` under Ray; an empty ``--methods``; absurd sizes for ``plan``. Through
the real command line, before any training.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import yaml
from cli_checks import refused
from tiny_bench import tiny_bench


def edit(folder, split: str, change) -> None:
    path = folder / f"{split}.csv"
    table = pd.read_csv(path, dtype={"image_id": str})
    change(table).to_csv(path, index=False)


def local_eval(folder, tmp_path) -> list[str]:
    return ["local-eval", "--bench", "competition", "--data", str(folder), "--models", "4",
            "--quiet", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]


def copy_row(src, k: int):
    return lambda table: pd.concat([table, src.iloc[[k]]], ignore_index=True)


def test_a_row_listed_twice_is_refused_with_both_lines(copy_of, tmp_path, capsys):
    retain = pd.read_csv(copy_of / "retain.csv", dtype={"image_id": str})
    edit(copy_of, "retain", copy_row(retain, 1))
    refused(capsys, local_eval(copy_of, tmp_path), f"retain.csv line {len(retain) + 2}",
            "also listed in retain.csv line 3", "remove one of the two rows")
    assert not (tmp_path / "cache").exists()


def test_a_retain_image_also_in_test_is_refused(copy_of, tmp_path, capsys):
    retain = pd.read_csv(copy_of / "retain.csv", dtype={"image_id": str})
    edit(copy_of, "test", copy_row(retain, 0))
    refused(capsys, local_eval(copy_of, tmp_path), "test.csv line",
            f"image_id {retain.image_id[0]!r} is also listed in retain.csv line 2")


def test_a_person_id_that_contradicts_its_image_id(copy_of, tmp_path, capsys):
    def change(table):
        table.loc[0, "person_id"] = table.loc[0, "person_id"] + 1000
        return table

    edit(copy_of, "validation", change)
    refused(capsys, local_eval(copy_of, tmp_path), "validation.csv line 2", "names person",
            "fix one of the two cells")


def test_a_person_in_retain_and_forget_names_csv_and_lines(copy_of, tmp_path, capsys):
    retain = pd.read_csv(copy_of / "retain.csv", dtype={"image_id": str})
    person = int(retain.person_id[0])

    def change(table):
        row = table.iloc[[0]].copy()
        row["person_id"], row["image_id"] = person, f"{person}-999"
        return pd.concat([table, row], ignore_index=True)

    edit(copy_of, "forget", change)
    refused(capsys, local_eval(copy_of, tmp_path), "forget.csv line",
            f"person_id {person} is also in retain.csv line 2", "wholly in forget")


@pytest.fixture
def bench(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_bench(4)))
    return path


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")
def test_device_cuda_without_a_gpu_says_use_cpu(bench, tmp_path, capsys):
    refused(capsys, ["local-eval", "--bench", str(bench), "--device", "cuda", "--out",
                     str(tmp_path / "r"), "--cache", str(tmp_path / "c")],
            "--device cuda", "use --device cpu")
    refused(capsys, ["train-original", "--bench", str(bench), "--device", "cuda",
                     "--cache", str(tmp_path / "c")], "use --device cpu")


def test_workers_under_ray_are_refused_not_ignored(bench, tmp_path, capsys):
    refused(capsys, ["local-eval", "--bench", str(bench), "--executor", "ray", "--workers",
                     "4", "--out", str(tmp_path / "r"), "--cache", str(tmp_path / "c")],
            "--workers 4", "drop --workers")


def test_an_empty_methods_list_is_refused(bench, tmp_path, capsys):
    refused(capsys, ["leaderboard", "--bench", str(bench), "--methods", "", "--out",
                     str(tmp_path / "r"), "--cache", str(tmp_path / "c")],
            "--methods ''", "names no method")
    refused(capsys, ["leaderboard", "--bench", str(bench), "--methods", " , ", "--out",
                     str(tmp_path / "r"), "--cache", str(tmp_path / "c")], "names no method")


@pytest.mark.parametrize("args,words", [
    (["--retain-size", "1000000000000"], ["--retain-size", "[1, 1000000]"]),
    (["--retain-size", "0"], ["--retain-size"]),
    (["--runs", "100000"], ["--runs", "[1, 100]"]),
])
def test_plan_refuses_absurd_sizes(capsys, args, words):
    refused(capsys, ["plan", "--method", "finetune", "--quiet", *args], *words)
