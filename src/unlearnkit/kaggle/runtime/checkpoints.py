"""The notebook's output: ``unlearned_checkpoint_{i}.pth`` files and ``submission.zip``.

The starter notebook saves state_dicts to ``/kaggle/tmp`` and runs
``zip submission.zip /kaggle/tmp/unlearned_*.pth``: Info-ZIP stores each file under its
path without the leading ``/`` (``kaggle/tmp/unlearned_checkpoint_0.pth``). The zip
written here holds the same member names, so on Kaggle it is laid out exactly as the
starter's, but stores the files rather than deflating them: float32 weights barely
deflate, and deflating 512 checkpoints would cost minutes of the 8-hour budget (measured:
docs/kaggle.md). Readers of a submission (the kit's scorer included)
find checkpoints by file name, whatever folder they sit in. On the public 'commit' run
(``empty.txt``) the starter ``touch``-es an empty ``submission.zip``: so does
:func:`write_empty_zip` (a 0-byte file).
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

from unlearnkit.atomic import atomic_path

NAME_RE = re.compile(r"(?:^|/)unlearned_checkpoint_(\d+)\.pth$")


def checkpoint_path(work_dir: Path, i: int) -> Path:
    """``<work_dir>/unlearned_checkpoint_{i}.pth``."""
    return Path(work_dir) / f"unlearned_checkpoint_{i}.pth"


def existing_checkpoints(work_dir: Path) -> dict[int, Path]:
    """``{i: path}`` of every ``unlearned_checkpoint_{i}.pth`` in ``work_dir``."""
    found = {}
    if Path(work_dir).is_dir():
        for path in Path(work_dir).iterdir():
            m = NAME_RE.search(path.name)
            if m:
                found[int(m.group(1))] = path
    return found


def clear_checkpoints(work_dir: Path) -> int:
    """Delete checkpoints left by an earlier run (they would spoil the count); return how many."""
    old = existing_checkpoints(work_dir)
    for path in old.values():
        path.unlink()
    return len(old)


def expect_checkpoints(work_dir: Path, n: int) -> list[Path]:
    """The paths of checkpoints 0..n-1, raising unless exactly those exist."""
    found = existing_checkpoints(work_dir)
    if sorted(found) != list(range(n)):
        missing = sorted(set(range(n)) - set(found))
        extra = sorted(set(found) - set(range(n)))
        raise RuntimeError(
            f"expected exactly {n} checkpoints in {work_dir}, found {len(found)} "
            f"(missing {missing[:5]}, unexpected {extra[:5]}); the submission would be invalid"
        )
    return [found[i] for i in range(n)]


def zip_member_name(path: Path) -> str:
    """The name ``zip`` gives ``path``: its absolute path without the leading '/'."""
    return os.path.abspath(path).replace(os.sep, "/").lstrip("/")


class SubmissionZip:
    """``submission.zip``, filled one checkpoint at a time as the runs make them.

    Each checkpoint is copied in as soon as it is saved: that time is part of the run's
    time, which the time guard sees, and no long zipping step is left after the last
    run. The zip is written to a hidden partial file and appears
    under its name only when :meth:`finish` has checked that it holds exactly the
    expected checkpoints; leaving the ``with`` block without finishing deletes it.
    """

    def __init__(self, zip_path: Path):
        self.zip_path = Path(zip_path)
        self.zip_path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.zip_path.with_name(f".{self.zip_path.name}.partial")
        self._zf = zipfile.ZipFile(self.partial, "w", compression=zipfile.ZIP_STORED,
                                   allowZip64=True)
        self.members: list[str] = []

    def add(self, path: Path) -> None:
        """Copy one checkpoint file into the zip."""
        name = zip_member_name(path)
        self._zf.write(path, arcname=name)
        self.members.append(name)

    def finish(self, expected: list[Path]) -> Path:
        """Check the zip holds exactly ``expected``, close it and move it into place."""
        want = sorted(zip_member_name(p) for p in expected)
        if sorted(self.members) != want:
            raise RuntimeError(
                f"the zip holds {len(self.members)} checkpoints, expected {len(want)} "
                f"(e.g. missing {sorted(set(want) - set(self.members))[:3]}); not writing "
                f"{self.zip_path}"
            )
        self._zf.close()
        os.replace(self.partial, self.zip_path)
        return self.zip_path

    def __enter__(self) -> SubmissionZip:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.partial.exists():  # not finished: an error, or finish() never called
            self._zf.close()
            self.partial.unlink()


def write_empty_zip(zip_path: Path) -> Path:
    """The commit run's output: an empty (0-byte) ``submission.zip``, as ``touch`` makes."""
    with atomic_path(zip_path) as tmp:
        tmp.write_bytes(b"")
    return Path(zip_path)


def zip_checkpoint_members(zip_path: Path) -> dict[int, str]:
    """``{i: member name}`` of the checkpoints inside a submission zip."""
    if Path(zip_path).stat().st_size == 0:
        return {}
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise ValueError(f"{zip_path} is not a zip file; expected the submission.zip the "
                         f"notebook writes, holding unlearned_checkpoint_{{i}}.pth files") from None
    with zf:
        found = {}
        for name in zf.namelist():
            m = NAME_RE.search(name)
            if m:
                if int(m.group(1)) in found:
                    raise ValueError(f"{zip_path} holds checkpoint {m.group(1)} twice")
                found[int(m.group(1))] = name
    return dict(sorted(found.items()))
