"""The process executor's Ctrl-C handling while it launches workers."""

from __future__ import annotations

import os
import signal
import time

import pytest

from unlearnkit.harness.executor import LocalExecutor, _children_ignore_sigint

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
