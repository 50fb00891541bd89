"""The background checkpoint writer: complete files, a full disk, the queue's bound."""

from __future__ import annotations

import errno
import threading
import time

import pytest
import torch

from unlearnkit.kaggle.runtime import checkpoints as ck
from unlearnkit.kaggle.runtime.writer import CheckpointWriteError, CheckpointWriter


def state(value: float) -> dict:
    return {"w": torch.full((4, 4), value), "b": torch.arange(3)}


def test_writes_complete_checkpoints_in_order(tmp_path):
    seen = []
    with CheckpointWriter(on_written=seen.append) as writer:
        for i in range(5):
            writer.put(state(float(i)), ck.checkpoint_path(tmp_path, i))
    assert seen == [ck.checkpoint_path(tmp_path, i) for i in range(5)]
    for i in range(5):
        got = torch.load(ck.checkpoint_path(tmp_path, i), weights_only=True)
        assert torch.equal(got["w"], torch.full((4, 4), float(i)))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in seen)


def test_the_weights_are_copied_when_queued(tmp_path):
    weights = state(1.0)
    with CheckpointWriter() as writer:
        writer.put(weights, tmp_path / "a.pth")
        weights["w"].fill_(9.0)  # the next run changes the network in place
    assert torch.load(tmp_path / "a.pth", weights_only=True)["w"].max() == 1.0


def full_disk(after: int):
    """A ``torch.save`` that writes ``after`` files, then half a file and ENOSPC."""
    count = [0]

    def save(obj, path):
        count[0] += 1
        if count[0] > after:
            path.write_bytes(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        torch.save(obj, path)
    return save


def test_a_full_disk_stops_with_a_clear_message_and_no_partial_file(tmp_path):
    work = tmp_path / "work"
    zip_path = tmp_path / "out" / "submission.zip"
    with pytest.raises(CheckpointWriteError) as err:
        with ck.SubmissionZip(zip_path) as submission:
            with CheckpointWriter(on_written=submission.add, save=full_disk(2)) as writer:
                for i in range(6):
                    writer.put(state(i), ck.checkpoint_path(work, i))
                    time.sleep(0.05)
            submission.finish(ck.expect_checkpoints(work, 6))
    message = str(err.value)
    assert "disk filled up" in message and "unlearned_checkpoint_2.pth" in message
    assert "No space left on device" in message and "2 checkpoints written" in message
    assert sorted(p.name for p in work.iterdir()) == \
        ["unlearned_checkpoint_0.pth", "unlearned_checkpoint_1.pth"]  # no partial, no tmp
    assert not zip_path.exists() and list(zip_path.parent.iterdir()) == []


def test_the_queue_holds_at_most_maxsize(tmp_path):
    release = threading.Event()

    def slow_save(obj, path):
        release.wait(10)
        torch.save(obj, path)

    writer = CheckpointWriter(maxsize=2, save=slow_save)
    for i in range(3):  # one being written, two waiting
        writer.put(state(i), tmp_path / f"{i}.pth")
    blocked = threading.Thread(target=writer.put, args=(state(3), tmp_path / "3.pth"))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive() and writer._queue.qsize() <= 2  # the fourth waits
    release.set()
    blocked.join(10)
    assert not blocked.is_alive()
    assert len(writer.close()) == 4 and len(list(tmp_path.iterdir())) == 4
