"""The Ray executor (``--executor ray``) on a local Ray instance: same models as the
process executor, killed workers retried, failures reported once, resume across
executors, and its bad inputs. One Ray instance serves the whole module."""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from tiny_bench import tiny_bench

from unlearnkit.atomic import atomic_path, sweep_tmp
from unlearnkit.benchmarks import load_benchmark
from unlearnkit.cli import main
from unlearnkit.harness import cache as cache_mod
from unlearnkit.harness import jobs, pipeline
from unlearnkit.harness.context import RETRAIN, prepare
from unlearnkit.methods import resolve_config

TINY = tiny_bench(4)
N = 4  # models per side in the pipeline tests (the minimum N): 13 small trainings, 4 runs
METHOD = "finetune"
SRC = str(Path(__file__).resolve().parents[1] / "src")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance with this machine's 2 cores, for every test here."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e .[ray] "
                              "(CI installs it: make setup-ray)")
    from unlearnkit.harness import ray_executor

    # the workers cannot import this test module: its job functions travel by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray_executor.connect(num_cpus=2)
    yield ray
    ray_executor.disconnect()


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def bench(bench_file):
    return dataclasses.replace(load_benchmark(str(bench_file)), num_models=N)


def build(bench, plan: pipeline.Plan):
    """The references, both oracles and N method runs, as local-eval builds them."""
    ctx, _ = pipeline.prepare_references(bench, plan)
    cfg = resolve_config(METHOD, bench.method_overrides.get(METHOD, {}))
    errors = pipeline.ensure_runs(ctx, plan, METHOD, cfg, list(range(N)))
    assert errors == []
    return ctx


@pytest.fixture(scope="module")
def process_cache(bench, tmp_path_factory):
    """Every entry built by the process executor (inline), for comparison."""
    root = tmp_path_factory.mktemp("process") / "cache"
    build(bench, pipeline.Plan(cache_dir=str(root), progress=False))
    return root


def entries(root: Path) -> dict[str, cache_mod.Outputs]:
    return {str(p.relative_to(root)): cache_mod.load_outputs(p) for p in root.rglob("*.npz")}


def same_outputs(a: cache_mod.Outputs, b: cache_mod.Outputs) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in cache_mod.REQUIRED)


def one_job(root: Path, bench, seed: int) -> tuple[jobs.Job, Path]:
    """The job of reference ``seed`` in the cache ``root``, its entry removed."""
    ctx = prepare(bench, root)
    path = ctx.model_path(RETRAIN, seed)
    path.unlink()
    return pipeline._job(ctx, pipeline.Plan(cache_dir=str(root)), RETRAIN, [seed]), path


# ---------------------------------------------------------------- job functions (in workers)


def die_mid_write_once(marker: str, job):
    """The first time: die (os._exit) halfway through writing the entry, its temporary
    file's name left in ``<marker>.tmp``; then run."""
    if not os.path.exists(marker):
        Path(marker).touch()

        def half_written(path, out):
            with atomic_path(path) as tmp:
                tmp.write_bytes(b"PK\x03\x04 half an entry")
                Path(marker + ".tmp").write_text(str(tmp))
                os._exit(1)

        cache_mod.save_outputs = half_written  # this worker only: it dies
    return jobs.run_job(job)


def always_die(job):
    os._exit(3)


def raise_counting(count_file: str, job):
    with open(count_file, "a") as fh:
        fh.write("called\n")
    raise ValueError("the method exploded")


def write_slowly(job):
    path, seconds = job
    with atomic_path(path) as tmp:
        tmp.write_text("partial")
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # short sleeps, as a training loop's batches: Ray's
            time.sleep(0.05)           # cancel interrupts between bytecodes, not in a sleep
    return path


# ---------------------------------------------------------------- same models, resume


@pytest.mark.slow
def test_resume_across_executors_gives_the_process_executors_models(
        ray_local, bench, process_cache, tmp_path, monkeypatch):
    """Half the models by the process executor (then Ctrl-C), the rest by Ray: every
    entry equals the process executor's, and the first half is reused, not rebuilt."""
    root = tmp_path / "cache"
    real, calls = jobs.train_one, []

    def interrupt_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "train_one", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        build(bench, pipeline.Plan(cache_dir=str(root), progress=False))
    monkeypatch.setattr(jobs, "train_one", real)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.npz")}
    assert len(before) == 2

    build(bench, pipeline.Plan(cache_dir=str(root), progress=False, engine="ray"))
    assert {p: p.stat().st_mtime_ns for p in before} == before  # reused, not rebuilt
    mine, theirs = entries(root), entries(process_cache)
    assert sorted(mine) == sorted(theirs) and len(mine) == 1 + N + 2 * N + N
    for name, out in mine.items():
        assert same_outputs(out, theirs[name]), name
        assert out.meta["threads"] == jobs.JOB_THREADS  # pinned inside Ray workers too
    assert not list(root.rglob("*.tmp"))


# ---------------------------------------------------------------- faults


def test_killed_worker_is_retried_and_leaves_no_partial_entry(
        ray_local, bench, process_cache, tmp_path):
    from unlearnkit.harness.ray_executor import RayExecutor

    root = tmp_path / "cache"
    shutil.copytree(process_cache, root)
    job, path = one_job(root, bench, 1)
    marker = tmp_path / "died-once"
    fn = functools.partial(die_mid_write_once, str(marker))
    [res] = RayExecutor(max_retries=2).map(fn, [job], progress=False)
    assert marker.exists() and res.error is None  # it died once, then the retry ran
    assert same_outputs(cache_mod.load_outputs(path), cache_mod.load_outputs(
        process_cache / path.relative_to(root)))
    half = Path(Path(f"{marker}.tmp").read_text())
    assert half.parent == path.parent  # the killed write was beside the entry, and its
    assert not half.exists()  # half-written file is gone: the retry swept it (dead writer)
    assert not list(root.rglob("*.tmp")) and sweep_tmp(root) == []


def test_worker_that_always_dies_is_reported_without_retries_left(ray_local):
    from unlearnkit.harness.ray_executor import RayExecutor

    [res] = RayExecutor(max_retries=0).map(always_die, [("job",)], progress=False)
    assert "worker died" in res.error and "0 retries" in res.error


def test_job_that_raises_is_reported_once(ray_local, tmp_path):
    from unlearnkit.harness.ray_executor import RayExecutor

    count = tmp_path / "calls"
    fn = functools.partial(raise_counting, str(count))
    [res] = RayExecutor(max_retries=3).map(fn, [("job",)], progress=False)
    assert res.error == "ValueError: the method exploded"
    assert count.read_text().splitlines() == ["called"]  # not retried


def test_stopping_cancels_the_running_jobs_and_keeps_the_finished(ray_local, tmp_path):
    from unlearnkit.harness.ray_executor import RayExecutor

    fast, slow = tmp_path / "fast.txt", tmp_path / "slow.txt"
    results = RayExecutor().map(write_slowly, [(fast, 0.0), (slow, 60.0)], progress=False)
    first = next(results)
    assert first.value == fast
    started = time.monotonic()
    results.close()  # as on Ctrl-C: the outstanding task is cancelled
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 30  # the cancelled task unwinds; slow on a loaded machine
    while any(p.name.endswith(".tmp") for p in tmp_path.iterdir()) and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fast.txt"]


# ---------------------------------------------------------------- bad input


def test_cache_that_workers_cannot_see_stops_the_run(ray_local, bench, process_cache, tmp_path):
    from unlearnkit.harness.ray_executor import NotVisible, RayExecutor

    root = tmp_path / "cache"
    shutil.copytree(process_cache, root)
    job, _ = one_job(root, bench, 1)
    hidden = dataclasses.replace(job, cache_dir=str(tmp_path / "not-on-the-workers"))
    with pytest.raises(NotVisible, match="shared filesystem"):
        list(RayExecutor().map(jobs.run_job, [hidden, hidden], progress=False))
    assert not (tmp_path / "not-on-the-workers").exists()  # nothing made up in its place


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_fails_within_seconds(ray_local, bench_file, tmp_path, capsys):
    started = time.monotonic()
    rc = main(["local-eval", "--bench", str(bench_file), "--executor", "ray", "--address",
               f"127.0.0.1:{free_port()}", "--cache", str(tmp_path / "cache"), "--quiet"])
    assert rc == 2 and time.monotonic() - started < 5
    assert "no Ray cluster answers at 127.0.0.1" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()  # refused before any work


def test_address_probe_gives_up_after_its_timeout(ray_local):
    from unlearnkit.harness.ray_executor import check_address

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="no Ray cluster answers"):
        check_address("192.0.2.1:6379", timeout=0.5)  # TEST-NET-1: nothing answers
    assert time.monotonic() - started < 3
    with pytest.raises(ValueError, match="HOST:PORT"):
        check_address("headnode")


def test_ray_not_installed_names_the_extra(bench_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    rc = main(["local-eval", "--bench", str(bench_file), "--executor", "ray",
               "--cache", str(tmp_path / "cache"), "--quiet"])
    assert rc == 2 and "pip install -e .[ray]" in capsys.readouterr().err


def test_ray_options_need_the_ray_executor(bench_file, tmp_path, capsys):
    rc = main(["local-eval", "--bench", str(bench_file), "--address", "127.0.0.1:1",
               "--cache", str(tmp_path / "cache"), "--quiet"])
    assert rc == 2 and "--executor ray" in capsys.readouterr().err


def test_gpu_shares():
    from unlearnkit.harness.ray_executor import RayExecutor, resources

    job = jobs.Job("{}", "/c", None, "cuda", RETRAIN, (0,))
    assert resources(job) == {"num_cpus": 1, "num_gpus": 0.25}
    assert resources(job, 0.5)["num_gpus"] == 0.5
    assert resources(dataclasses.replace(job, seeds=(0, 1)))["num_gpus"] == 1.0
    assert "num_gpus" not in resources(dataclasses.replace(job, device="cpu"))
    for bad in (1.5, 0, -1):
        with pytest.raises(ValueError, match="gpus-per-job"):
            RayExecutor(gpus_per_job=bad)
    assert RayExecutor(gpus_per_job=2).gpus_per_job == 2


# ---------------------------------------------------------------- the default path


def test_default_path_never_imports_ray():
    code = (
        "import sys\n"
        "from unlearnkit.cli import main\n"
        "from unlearnkit.harness.pipeline import Plan\n"
        "assert main(['list']) == 0\n"
        "assert [r.value for r in Plan(workers=1).make_executor().map(abs, [-2], "
        "progress=False)] == [2]\n"
        "assert 'ray' not in sys.modules, 'the default path imported ray'\n"
        "print('no ray')\n")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("no ray")
