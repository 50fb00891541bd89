"""The result cache: each model's outputs stored once, addressed by what made them.

One entry is one ``.npz`` file holding a model's logits on the forget and test sets,
its predicted labels on the retain set (enough for every score) and a small JSON
metadata string. Entries are written atomically, so an interrupted run leaves only
complete entries and resumes where it stopped; an unreadable entry is treated as
missing and rebuilt.

An entry is built under its lock (:func:`entry_lock`, ``.<seed>.npz.lock`` beside it),
so two processes sharing a cache never build one entry at once: the second one finds
it locked, does other work, then waits for it and reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, file_lock
from ..metrics.model_sets import Outputs

REQUIRED = ("forget_logits", "test_logits", "retain_pred")


class NonFinite(ValueError):
    """A model's outputs hold NaN or infinite logits: never cached, never scored."""


def check_finite(logits: dict[str, np.ndarray], what: str) -> None:
    """Raise :class:`NonFinite` naming ``what`` and the parts (forget, test, retain)
    whose logits hold NaN or infinity."""
    bad = [name for name, x in logits.items() if not np.isfinite(x).all()]
    if bad:
        raise NonFinite(f"{what} gave NaN or infinite outputs (logits on {', '.join(bad)}); "
                        "they are not cached, so a rerun runs it again (a diverging "
                        "setting: lower the learning rate or the steps)")


def save_outputs(path: str | os.PathLike, out: Outputs) -> Path:
    """Write one entry atomically; non-finite logits are refused (:class:`NonFinite`), so
    a model that diverged is never read back from the cache."""
    check_finite({"forget": out.forget_logits, "test": out.test_logits},
                 f"the entry {Path(path)}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                forget_logits=out.forget_logits.astype(np.float32),
                test_logits=out.test_logits.astype(np.float32),
                retain_pred=out.retain_pred.astype(np.int16),
                meta=np.array(json.dumps(out.meta)),
            )
    return Path(path)


def load_outputs(path: str | os.PathLike, note: Callable[[str], None] | None = None
                 ) -> Outputs | None:
    """Read one entry; ``None`` when it is missing, and also when it is corrupted
    (the broken file is then removed so that it gets rebuilt, and ``note`` is told why)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if any(k not in z for k in REQUIRED):
                raise KeyError("incomplete entry")
            check_finite({"forget": z["forget_logits"], "test": z["test_logits"]},
                         "the entry")  # an older kit's cached NaN: rebuilt, not scored
            return Outputs(
                forget_logits=z["forget_logits"],
                test_logits=z["test_logits"],
                retain_pred=z["retain_pred"],
                meta=json.loads(str(z["meta"])) if "meta" in z else {},
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile,
            json.JSONDecodeError) as err:  # NonFinite is a ValueError
        path.unlink(missing_ok=True)
        if note is not None:
            note(f"cache entry {path} was unreadable ({type(err).__name__}: {err}); "
                 "removed, it is rebuilt")
        return None


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of entry ``path``: ``.<name>.lock`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def entry_lock(path: str | os.PathLike, wait: bool = True) -> Iterator[Path]:
    """Hold entry ``path``'s lock while building it (:func:`unlearnkit.atomic.file_lock`;
    ``wait=False`` raises :class:`unlearnkit.atomic.Busy` when another process holds it)."""
    with file_lock(lock_path(path), wait=wait) as lock:
        yield lock
