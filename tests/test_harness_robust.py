"""local-eval whatever the load (issue 19) and a cache that heals and is shared (issue 13).

Through the real CLI, on a tiny digits benchmark (N = 4, one epoch).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from tiny_bench import tiny_bench

from unlearnkit.atomic import atomic_dir, file_lock, lock_holder, sweep_tmp
from unlearnkit.benchmarks import benchmark_from_dict, load_benchmark
from unlearnkit.cli import main
from unlearnkit.data.sources import get_source
from unlearnkit.harness import cache as cache_mod
from unlearnkit.harness import context, executor, jobs
from unlearnkit.methods import _REGISTRY
from unlearnkit.paths import mark_output

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = tiny_bench(4)


def run_cli(bench_file, root, *extra, method="finetune", out="run", cache="cache"):
    return main(["local-eval", "--bench", str(bench_file), "--method", method, "--quiet",
                 "--cache", str(root / cache), "--out", str(root / out), *extra])


def entries(cache: Path) -> dict[str, cache_mod.Outputs]:
    """Every cache entry under ``cache``, by its path inside the benchmark's data folder."""
    return {"/".join(path.relative_to(cache).parts[2:]): cache_mod.load_outputs(path)
            for path in sorted(cache.glob("*/*/**/*.npz"))}


def assert_same_entries(a: Path, b: Path) -> None:
    ea, eb = entries(a), entries(b)
    assert ea.keys() == eb.keys() and len(ea) == 17  # 1 + 4 + 8 models, 4 runs
    for key in ea:
        for field in ("forget_logits", "test_logits", "retain_pred"):
            np.testing.assert_array_equal(getattr(ea[key], field), getattr(eb[key], field),
                                          err_msg=f"{key} {field}")


def report(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One full run with --workers 1 (every model trained once); tests copy its cache."""
    root = tmp_path_factory.mktemp("built")
    bench = root / "tiny.yaml"
    bench.write_text(yaml.safe_dump(TINY))
    assert run_cli(bench, root) == 0
    return root


@pytest.fixture()
def copied(built, tmp_path):
    """This test's folder with a copy of the built cache and of its run folder."""
    shutil.copytree(built / "cache", tmp_path / "cache")
    shutil.copytree(built / "run", tmp_path / "run")
    return built / "tiny.yaml"


class Counter:
    """Wraps jobs.run_job, counting the jobs by kind."""

    def __init__(self, monkeypatch):
        self.kinds: list[str] = []
        real = jobs.run_job
        monkeypatch.setattr(jobs, "run_job", lambda job: self.kinds.append(job.kind) or real(job))


# ---------------------------------------------------------------- --workers


def test_workers_2_gives_the_same_models_and_score(built, tmp_path, monkeypatch):
    """Every job runs with one thread: --workers 2 on a fresh cache rebuilds every entry
    bit for bit, and the score is the same; the time rule reads only runs timed alone.
    The command starts its 2 worker processes once, for every stage."""
    started = []

    class Counted(executor._Worker):
        def __init__(self, ctx):
            started.append(1)
            super().__init__(ctx)

    monkeypatch.setattr(executor, "_Worker", Counted)
    assert run_cli(built / "tiny.yaml", tmp_path, "--workers", "2") == 0
    assert len(started) == 2
    assert_same_entries(built / "cache", tmp_path / "cache")
    one, two = report(built / "run"), report(tmp_path / "run")
    assert two["score"] == one["score"] and two["forget_quality"] == one["forget_quality"]
    assert one["timing"]["measured"] == two["timing"]["measured"] == "alone"
    assert one["timing"]["method_runs_timed"] == 4 and two["timing"]["method_runs_timed"] == 1
    assert one["timing"]["threads_per_job"] == two["timing"]["threads_per_job"] == 1
    alone = [e for e in entries(tmp_path / "cache").values()
             if e.meta["kind"] == "method" and e.meta["concurrent"] == 1]
    assert len(alone) == 1
    assert two["seconds_per_run"] == pytest.approx(alone[0].meta["seconds"])


def test_a_job_pins_its_threads_and_restores_them():
    import torch

    before = torch.get_num_threads()
    with jobs.pinned_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


# ---------------------------------------------------------------- checks first


@pytest.mark.parametrize("extra, words", [
    (["--method", "linear_filtration"], ["linear_filtration", "random:0.1", "--scenario"]),
    (["--method", "finetune,bad_teacher", "--set", "momentum=0.5"], ["momentum", "bad_teacher"]),
    (["--method", "finetune", "--models", "3"], ["N = 3", "--models 4"]),
    (["--method", "finetune", "--scenario", "random:2"], ["random:2"]),
    (["--method", "finetune", "--workers", "0"], ["--workers"]),
    (["--method", "finetune", "--set", "epochs=-1"], ["finetune.epochs = -1", "[1, inf)",
                                                     "Passes over the retain set"]),
    (["--method", "finetune", "--set", "lr=-0.1"], ["finetune.lr = -0.1", "(0, inf)"]),
])
def test_bad_requests_fail_before_any_work(tmp_path, monkeypatch, capsys, extra, words):
    bench = tmp_path / "tiny.yaml"
    bench.write_text(yaml.safe_dump(TINY))
    counter = Counter(monkeypatch)
    monkeypatch.setattr(context, "get_source", lambda *a, **k: pytest.fail("data was read"))
    start = time.perf_counter()
    code = main(["local-eval", "--bench", str(bench), "--quiet", "--cache",
                 str(tmp_path / "cache"), "--out", str(tmp_path / "run"), *extra])
    assert time.perf_counter() - start < 5
    assert code == 2 and counter.kinds == []
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()


def test_class_only_method_on_a_class_scenario_passes_the_check():
    from unlearnkit.harness.pipeline import check_request

    bench = benchmark_from_dict({**TINY, "name": "t", "scenario": "class:3"})
    assert set(check_request(bench, ["linear_filtration", "finetune"])) == {
        "linear_filtration", "finetune"}


# ---------------------------------------------------------------- --out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_failed_run_leaves_the_previous_run_folder_as_it_was(copied, tmp_path, monkeypatch,
                                                                capsys):
    before = _snapshot(tmp_path / "run")
    assert "confidences.npz" in before
    finetune = _REGISTRY["finetune"]

    def explode(net, retain, forget, val, *, seed, **hp):
        raise RuntimeError(f"boom on seed {seed}")

    monkeypatch.setitem(_REGISTRY, "explode",
                        dataclasses.replace(finetune, name="explode", fn=explode))
    assert run_cli(copied, tmp_path, method="explode") == 1
    assert _snapshot(tmp_path / "run") == before
    failed = report(tmp_path / "run.failed")
    assert "boom on seed" in failed["error"]
    assert not (tmp_path / "run.failed" / "confidences.npz").exists()
    assert "left as it was" in capsys.readouterr().err

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("unlearnkit.report.write_plots", interrupt)  # mid-write
    assert run_cli(copied, tmp_path, "--set", "epochs=1", method="random_label") == 130
    assert _snapshot(tmp_path / "run") == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".run")] == []


def test_a_successful_run_replaces_the_folder_as_a_whole(copied, tmp_path):
    (tmp_path / "run" / "stray.png").write_bytes(b"from another run")
    assert run_cli(copied, tmp_path, "--set", "epochs=1", method="random_label") == 2
    assert (tmp_path / "run" / "stray.png").is_file()  # not the kit's: refused, kept
    mark_output(tmp_path / "run")  # the kit's now (as if an earlier run wrote it)
    assert run_cli(copied, tmp_path, "--set", "epochs=1", method="random_label") == 0
    assert not (tmp_path / "run" / "stray.png").exists()
    assert report(tmp_path / "run")["method"] == "random_label"
    assert (tmp_path / "run" / "confidences.npz").is_file()


def test_atomic_dir_keeps_the_old_folder_on_error(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("new")
        raise RuntimeError("stop")
    assert (tmp_path / "out" / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ---------------------------------------------------------------- the cache heals


def test_a_truncated_original_is_rebuilt(copied, tmp_path, monkeypatch, capsys):
    (original,) = (tmp_path / "cache").glob("*/*/original.pth")
    cached = np.load(original.with_name("models") / "original" / "0.npz")["forget_logits"]
    original.write_bytes(original.read_bytes()[:100])
    stale = original.parent / "models" / "retrain" / ".3.npz.999999999.x1y2.tmp"
    stale.write_bytes(b"")  # left by a killed write (that PID does not run)
    live = original.parent / "models" / "retrain" / f".4.npz.{os.getpid()}.x1y2.tmp"
    live.write_bytes(b"")  # a write in progress (this process runs)
    counter = Counter(monkeypatch)
    assert run_cli(copied, tmp_path, "--set", "epochs=1", method="random_label") == 0
    assert counter.kinds == ["original"] + ["method"] * 4
    assert jobs.checkpoint_ok(original)
    rebuilt = np.load(original.with_name("models") / "original" / "0.npz")["forget_logits"]
    np.testing.assert_array_equal(rebuilt, cached)  # same seed, same model
    err = capsys.readouterr().err
    assert "original.pth is unreadable" in err and "killed write" in err
    assert not stale.exists() and live.exists()


def test_sweep_removes_only_dead_writers_files(tmp_path):
    dead = tmp_path / ".a.npz.999999999.abc.tmp"
    mine = tmp_path / f".b.npz.{os.getpid()}.abc.tmp"
    for p in (dead, mine):
        p.write_bytes(b"")
    assert sweep_tmp(tmp_path) == [dead]
    assert mine.exists()


# ---------------------------------------------------------------- Ctrl-C


def _alive_in_group(pgid: int) -> list[str]:
    """The processes of group ``pgid`` that still run (zombies, dead but not yet reaped by
    a container's init, do not count)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(stat.parent.name)
    return alive


def _as_from_a_terminal() -> None:
    """In the child before exec: SIGINT at its default and unblocked, as a terminal starts
    a command. A pytest launched with ``&`` from a script inherits SIGINT ignored (bash
    does that without job control), and so would the CLI: it then never sees the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_with_workers_ends_at_once_and_leaves_only_whole_entries(built, tmp_path):
    """Ctrl-C while two workers run the method: the command ends within 2 s, no worker
    trains on, and the cache holds only whole entries (no temporary file). 16 epochs keep
    the pool training well past the signal (with 4 the command exited 0 in two local
    full-suite runs on 2026-12-03: the signal landed late or in a window where it is
    ignored)."""
    cache = tmp_path / "cache"
    shutil.copytree(built / "cache", cache)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "unlearnkit.cli", "local-eval", "--bench",
         str(built / "tiny.yaml"), "--method", "finetune", "--set", "epochs=16", "--workers",
         "2", "--quiet", "--cache", str(cache), "--out", str(tmp_path / "run")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=_as_from_a_terminal)
    runs = "*/*/runs/finetune/*/*.npz"
    old = set(cache.glob(runs))
    try:
        deadline = time.monotonic() + 240
        while not [p for p in cache.glob(runs) if p not in old and p.stem != "0"]:  # the pool
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the workers never trained"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
        sent = time.monotonic()
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    err = err.decode()
    assert proc.returncode == 130, err
    assert took < 2, f"took {took:.1f} s after Ctrl-C"
    assert "interrupted" in err and "Traceback" not in err, err
    end = time.monotonic() + 1  # the workers are joined before the exit; multiprocessing's
    while _alive_in_group(proc.pid) and time.monotonic() < end:  # resource tracker follows
        time.sleep(0.05)
    assert _alive_in_group(proc.pid) == []  # nothing survives
    assert [p for p in cache.rglob("*.tmp")] == []
    for path in cache.rglob("*.npz"):
        assert cache_mod.load_outputs(path) is not None, path
    assert not (tmp_path / "run").exists()
    done = set(cache.glob(runs)) - old
    assert 2 <= len(done) <= 3  # the run alone and one of the pool's; not all four
    time.sleep(1)  # nothing trains on after the exit
    assert set(cache.glob(runs)) - old == done


# ---------------------------------------------------------------- data fingerprint


def _edit_labels(folder: Path) -> None:
    """Permute the labels of retain.csv in place (same file name, other content)."""
    import csv

    path = folder / "retain.csv"
    rows = list(csv.DictReader(path.open()))
    label = "age_group"  # the competition's label column
    labels = [r[label] for r in rows]
    rng = np.random.default_rng(0)
    while [r[label] for r in rows] == labels:
        for r, v in zip(rows, rng.permutation(labels)):
            r[label] = v
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_an_edited_data_folder_gets_other_cache_entries(mock_dir, tmp_path):
    data = tmp_path / "input"
    shutil.copytree(mock_dir, data)
    bench = benchmark_from_dict({**TINY, "name": "comp", "source": "competition",
                                 "source_options": {}, "scenario": "given"})
    first = context.prepare(bench, tmp_path / "cache", data, progress=False)
    again = context.prepare(bench, tmp_path / "cache", data, progress=False)
    assert again.folder == first.folder and again.notes == []
    assert json.loads((first.folder / "data.json").read_text())["fingerprint"] == \
        first.fingerprint
    _edit_labels(data)
    edited = context.prepare(bench, tmp_path / "cache", data, progress=False)
    assert edited.fingerprint != first.fingerprint
    assert edited.folder != first.folder and edited.folder.parent == first.folder.parent
    assert any("stale" in n and str(first.folder) in n for n in edited.notes), edited.notes
    other = tmp_path / "other"  # another folder, same content: its own data root, no note
    shutil.copytree(mock_dir, other)
    assert context.prepare(bench, tmp_path / "cache", other, progress=False).notes == []
    with pytest.raises(RuntimeError, match="changed while this evaluation ran"):
        context.prepare(bench, tmp_path / "cache", data, progress=False,
                        expect_fingerprint=first.fingerprint)


def test_fingerprint_sees_one_label_and_one_pixel():
    src = get_source("digits", views=1)
    fp = context.fingerprint(src)
    assert context.fingerprint(get_source("digits", views=1)) == fp
    src.train.labels[0] = (src.train.labels[0] + 1) % 10  # one label edited
    assert context.fingerprint(src) != fp
    other = get_source("digits", views=1)
    other.test.images[5, 0, 0, 0] += 7  # one pixel of one test image
    assert context.fingerprint(other) != fp


def test_the_cli_says_when_the_data_changed(built, tmp_path, monkeypatch, capsys):
    """An edited source (here: digits with one label changed) gets a new original, and the
    cached models of its old content are named stale."""
    shutil.copytree(built / "cache", tmp_path / "cache")
    real = context.get_source

    def edited(*a, **k):
        data = real(*a, **k)
        data.train.labels[0] = (data.train.labels[0] + 1) % 10
        return data

    monkeypatch.setattr(context, "get_source", edited)
    counter = Counter(monkeypatch)
    assert main(["train-original", "--bench", str(built / "tiny.yaml"), "--cache",
                 str(tmp_path / "cache")]) == 0
    assert counter.kinds == ["original"]
    err = capsys.readouterr().err
    assert "changed since" in err and "stale" in err
    assert len(list((tmp_path / "cache").glob("*/*/original.pth"))) == 2


# ---------------------------------------------------------------- two processes, one cache


DRIVER = textwrap.dedent("""
    import os, sys
    from unlearnkit.harness import jobs
    from unlearnkit.cli import main
    log = sys.argv[1]

    def logged(name):
        real = getattr(jobs, name)
        def wrapper(ctx, *args, **kw):
            seeds = args[1] if name == "train_one" else args[0].seeds
            kind = args[0] if name == "train_one" else args[0].kind
            with open(log, "a") as fh:
                for s in ([seeds] if isinstance(seeds, int) else seeds):
                    fh.write(f"{kind} {s} {os.getpid()}\\n")
            return real(ctx, *args, **kw)
        setattr(jobs, name, wrapper)

    for name in ("train_one", "train_fused", "method_run"):
        logged(name)
    sys.exit(main(sys.argv[2:]))
""")


def test_two_processes_on_one_cache_train_each_model_once(built, tmp_path):
    driver, log = tmp_path / "driver.py", tmp_path / "built.log"
    driver.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs = [subprocess.Popen(
        [sys.executable, str(driver), str(log), "local-eval", "--bench",
         str(built / "tiny.yaml"), "--method", "finetune", "--quiet", "--cache",
         str(tmp_path / "cache"), "--out", str(tmp_path / f"run{i}")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err.decode()
    lines = log.read_text().split()
    built_here = [tuple(lines[i:i + 2]) for i in range(0, len(lines), 3)]
    assert len(built_here) == len(set(built_here)) == 17, lines  # each entry built once
    assert len(set(lines[2::3])) == 2  # both processes did some of the work
    assert_same_entries(built / "cache", tmp_path / "cache")
    scores = {report(tmp_path / f"run{i}")["score"] for i in range(2)}
    assert scores == {report(built / "run")["score"]}


def test_a_held_entry_is_reported_busy_with_its_holder(tmp_path):
    path = tmp_path / "0.npz"
    with cache_mod.entry_lock(path):
        child = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(f"""
                from unlearnkit.harness import cache
                from unlearnkit.atomic import Busy
                try:
                    with cache.entry_lock({str(path)!r}, wait=False):
                        print("acquired")
                except Busy as b:
                    print("busy", b.pid)
            """)], env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True)
        assert child.stdout.split() == ["busy", str(os.getpid())], child.stderr
    assert lock_holder(cache_mod.lock_path(path)) == os.getpid()
    with file_lock(cache_mod.lock_path(path), wait=False):
        pass  # released: free again


def test_train_original_heals_an_empty_checkpoint(built, tmp_path, monkeypatch):
    shutil.copytree(built / "cache", tmp_path / "cache")
    (original,) = (tmp_path / "cache").glob("*/*/original.pth")
    original.write_bytes(b"")
    counter = Counter(monkeypatch)
    assert main(["train-original", "--bench", str(built / "tiny.yaml"), "--cache",
                 str(tmp_path / "cache"), "--out", str(tmp_path / "o.pth")]) == 0
    assert counter.kinds == ["original"]
    assert jobs.checkpoint_ok(original) and jobs.checkpoint_ok(tmp_path / "o.pth")
    ctx = context.prepare(load_benchmark(str(built / "tiny.yaml")), tmp_path / "cache")
    assert ctx.original_path == original
