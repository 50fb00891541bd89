"""Checkpoints written in the background while the next run computes.

One thread takes ``(state_dict, path)`` pairs from a bounded queue and saves each
atomically (:func:`unlearnkit.atomic.atomic_path`: a temporary file, then a rename), so a
checkpoint on disk is always complete or absent, even when the notebook is stopped; only
then does it hand the path on (to :class:`~.checkpoints.SubmissionZip`). The queue's
bound keeps at most ``maxsize`` state_dicts waiting in host memory: a run that finishes
while it is full waits. A failed write (a full disk above all) stops the writer: the next
:meth:`CheckpointWriter.put` or :meth:`CheckpointWriter.close` raises
:class:`CheckpointWriteError` saying what happened and what to do.
"""

from __future__ import annotations

import errno
import queue
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from unlearnkit.atomic import atomic_path

_STOP = None


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written; the notebook must stop."""


def write_error(err: BaseException, what: str, folder: Path, written: int) -> CheckpointWriteError:
    """The message of a failed write: what, where, what is left, what to do."""
    left = (f"the {written} checkpoints written before it are complete and no partial file "
            f"is left; no submission.zip is built from an incomplete set")
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return CheckpointWriteError(
            f"the disk filled up while writing {what} ({err.strerror or err}): stopping; "
            f"{left}. Free space in {folder} (or set UNLEARNKIT_WORK_DIR to a larger "
            f"disk) and run the notebook again")
    return CheckpointWriteError(f"could not write {what} ({type(err).__name__}: {err}): "
                                f"stopping; {left}. Fix the cause and run again")


class CheckpointWriter:
    """A background writer of checkpoints with a queue of at most ``maxsize`` waiting.

    ``on_written(path)`` runs in the writer's thread after each complete write (it is
    the only thread calling it). ``save(state, file)`` is ``torch.save`` (tests replace
    it). Use it as a context manager: leaving the block waits for the queued writes.
    """

    def __init__(self, on_written: Callable[[Path], None] | None = None, maxsize: int = 2,
                 save: Callable = torch.save):
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.written: list[Path] = []
        self._on_written = on_written
        self._save = save
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._error: CheckpointWriteError | None = None
        self._thread = threading.Thread(target=self._loop, name="checkpoint-writer", daemon=True)
        self._thread.start()

    def put(self, net_or_state, path) -> None:
        """Queue a copy of the weights (on the CPU) for ``path``; wait while the queue is full."""
        self.check()
        state = net_or_state.state_dict() if hasattr(net_or_state, "state_dict") else net_or_state
        state = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
        self._queue.put((state, Path(path)))

    def check(self) -> None:
        """Raise the writer's error, if a write failed."""
        if self._error is not None:
            raise self._error

    def close(self) -> list[Path]:
        """Wait for every queued write; return the paths written (raise if one failed)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self.check()
        return list(self.written)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is None:  # after a failure the rest is dropped, never written
                self._write(*item)

    def _write(self, state: dict, path: Path) -> None:
        what = str(path)
        try:
            with atomic_path(path) as tmp:
                self._save(state, tmp)
            what = f"{path} into the submission zip"
            if self._on_written is not None:
                self._on_written(path)
            self.written.append(path)
        except BaseException as err:  # noqa: BLE001 - any failure stops the writer, reported
            self._error = write_error(err, what, path.parent, len(self.written))
            self._error.__cause__ = err

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        if self._thread.is_alive():  # an error in the runs: still finish what was queued
            self._queue.put(_STOP)
            self._thread.join()
