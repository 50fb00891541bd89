"""The process executor: Ctrl-C while it launches workers; one pool of workers per command."""

from __future__ import annotations

import os
import signal
import time

import pytest

from unlearnkit.harness.executor import LocalExecutor, WorkerPool, _children_ignore_sigint

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"),
                                reason="signal masks are POSIX only")


def sigint_state(_job) -> tuple[bool, bool]:
    """In a worker: (SIGINT ignored, SIGINT blocked)."""
    return (signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
            signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_ctrl_c_during_the_launch_is_raised_when_it_ends_not_lost():
    body_done = False
    with pytest.raises(KeyboardInterrupt):
        with _children_ignore_sigint():
            os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C while workers start
            time.sleep(0.05)
            body_done = True  # the launch itself is not interrupted
    assert body_done
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_workers_ignore_ctrl_c_and_do_not_keep_it_blocked():
    results = list(LocalExecutor(workers=2).map(sigint_state, [0, 1], progress=False))
    assert [r.error for r in results] == [None, None]
    assert [r.value for r in results] == [(True, False), (True, False)]


def pid(_job) -> int:
    return os.getpid()


def test_a_pool_keeps_its_workers_for_every_map_until_closed():
    """One pool for a whole command: the second stage's jobs run in the first stage's
    processes (torch imported and the benchmark prepared once), not in fresh ones."""
    with WorkerPool() as pool:
        first = {r.value for r in LocalExecutor(2, pool).map(pid, range(4), progress=False)}
        second = {r.value for r in LocalExecutor(2, pool).map(pid, range(4), progress=False)}
        inline = [r.value for r in LocalExecutor(1, pool).map(pid, range(2), progress=False)]
        procs = [w.proc for w in pool.workers]
        assert len(first) == 2 and second == first and os.getpid() not in first
        assert inline == [os.getpid()] * 2  # one worker: inline, as without a pool
    assert all(not p.is_alive() for p in procs)
    with pytest.raises(RuntimeError, match="closed"):
        pool.take(1)


def test_a_broken_map_ends_the_pools_workers_and_the_next_map_starts_fresh_ones():
    with WorkerPool() as pool:
        results = LocalExecutor(2, pool).map(pid, range(4), progress=False)
        before = {next(results).value}
        results.close()  # the caller stopped reading (as on Ctrl-C): its workers end
        assert pool.workers == []
        after = {r.value for r in LocalExecutor(2, pool).map(pid, range(2), progress=False)}
        assert len(after) == 2 and not before & after
