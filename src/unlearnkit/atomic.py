"""Atomic writes and locks: nothing half-written survives a crash or Ctrl-C.

- :func:`atomic_path`: a file is written under a temporary name beside it, then renamed
  onto it; the temporary name carries the writer's PID, so :func:`sweep_tmp` can tell a
  killed writer's leftover from a write in progress.
- :func:`atomic_dir`: a folder (a run's report) is written as a temporary sibling, then
  swapped in; on any error the previous folder stays as it was.
- :func:`file_lock`: an exclusive ``fcntl.flock`` on a lock file, with the holder's PID
  written in it (released by the kernel when the holder dies).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: locks are no-ops
    fcntl = None

TMP_SUFFIX = ".tmp"
_TMP_PID = re.compile(r"\.(\d+)\.[^.]*\.tmp$")  # .<name>.<pid>.<random>.tmp
STALE_TMP_SECONDS = 24 * 3600  # a temporary file without a PID counts as stale after this


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception (KeyboardInterrupt included) the temporary file is removed and
    ``path`` keeps its previous content, if it had any.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX,
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(obj):
    """JSON fallback for numpy scalars and arrays and paths."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# ---------------------------------------------------------------- leftovers


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def is_stale_tmp(path: Path, now: float | None = None) -> bool:
    """A temporary file of :func:`atomic_path` whose writer is gone."""
    m = _TMP_PID.search(path.name)
    if m:
        return not pid_alive(int(m.group(1)))
    try:
        return (now or time.time()) - path.stat().st_mtime > STALE_TMP_SECONDS
    except FileNotFoundError:
        return False


def sweep_tmp(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files under ``folder`` left by killed writers; return them."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    now = time.time()
    for path in folder.rglob(f".*{TMP_SUFFIX}"):
        if path.is_file() and is_stale_tmp(path, now):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


# ---------------------------------------------------------------- folders


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; swap it in for ``path`` on success.

    On any exception the temporary folder is removed and ``path`` (if it existed) is left
    as it was. On success the previous ``path`` is replaced as a whole: none of its files
    mix with the new ones.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmpdir",
                                dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        swap_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_dir(new: Path, path: Path) -> None:
    """Put folder ``new`` at ``path``; the previous ``path`` is removed once replaced."""
    if not path.exists():
        os.replace(new, path)
        return
    if not path.is_dir():
        raise ValueError(f"{path} exists and is not a folder; give another --out")
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)  # put the previous folder back
        raise
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- locks


class Busy(Exception):
    """The lock is held by another process (``pid``, when it wrote one)."""

    def __init__(self, path: Path, pid: int | None):
        super().__init__(f"{path} is held by PID {pid}")
        self.path, self.pid = path, pid


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, wait: bool = True) -> Iterator[Path]:
    """Hold an exclusive lock on the file ``path`` (created if missing) for the block.

    ``wait=False`` raises :class:`Busy` at once when another process holds it. The lock
    file is kept (removing it would race with the next holder); it holds the PID of the
    last holder, for messages.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise Busy(path, lock_holder(path)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(fd)  # releases the lock


def lock_holder(path: str | os.PathLike) -> int | None:
    """The PID written in a lock file, if any."""
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
