"""Every path a command reads or writes, checked before any work; the kit's own outputs, marked.

Each command calls :func:`check_paths` first: the output (a folder or a file), the cache,
the data root, the study storage and the input files. A refusal is one ``ValueError``
line naming the option, the path and what to do, raised before any data is read or any
model trained, so a bad path costs seconds, not a training.

Two rules keep the user's files safe:

- an output folder is replaced as a whole, so an existing one is accepted only when the
  kit wrote it: it holds the manifest :data:`MARKER` (written by :func:`mark_output`)
  and nothing the manifest does not list, or (outputs of older versions) only file
  names the kit writes. Anything else is refused, naming a file the kit did not write;
- an output may never be, hold or sit inside the cache, the data root or the working
  folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

MARKER = ".unlearnkit-output.json"
"""The manifest the kit writes into each output folder: the files it wrote there."""
KIT_NAMES = {"report.json", "report.md", "split.json", "confidences.npz", "best.yaml",
             "trials.csv", "summary.json", "leaderboard.json", "leaderboard.md"}
"""File names of outputs written before the manifest existed (with any ``*.png``)."""
SQLITE_HEADER = b"SQLite format 3\x00"


# ---------------------------------------------------------------- the kit's outputs


def mark_output(folder: str | os.PathLike, command: str = "") -> Path:
    """Write the manifest of ``folder``: every file in it (the kit's, just written)."""
    from .atomic import write_json

    folder = Path(folder)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                   if p.is_file() and p.name != MARKER)
    return write_json(folder / MARKER, {"written_by": "unlearnkit", "command": command,
                                        "files": files})


def foreign_file(folder: Path) -> str | None:
    """A file of ``folder`` the kit did not write (relative path), or None when every
    file is the kit's (an empty folder included)."""
    files = [p for p in folder.rglob("*") if p.is_file() or p.is_symlink()]
    names = {str(p.relative_to(folder)) for p in files if p.name != MARKER}
    listed = _listed(folder / MARKER)
    if listed is None:  # an output of an older version: only the kit's file names, flat
        listed = {n for n in names if "/" not in n and (n in KIT_NAMES or n.endswith(".png"))}
    extra = sorted(names - listed)
    if extra:
        return extra[0]
    subdirs = [p for p in folder.rglob("*") if p.is_dir() and not any(p.iterdir())]
    return str(subdirs[0].relative_to(folder)) + "/" if subdirs else None


def _listed(marker: Path) -> set[str] | None:
    """The files a manifest lists; None when there is none (or it is not the kit's)."""
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("written_by") != "unlearnkit":
        return None
    return {str(f) for f in data.get("files", [])}


# ---------------------------------------------------------------- small probes


def _resolved(path) -> Path:
    return Path(os.path.expanduser(str(path))).resolve()


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def not_writable(folder: Path) -> str | None:
    """Why a file cannot be created in the existing ``folder`` (text), or None."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".unlearnkit-probe.", dir=folder)
    except OSError as err:
        return err.strerror or type(err).__name__
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


def check_creatable(path: Path, what: str, fix: str) -> None:
    """Refuse ``path`` (a folder to create or write in) when its nearest existing ancestor
    is not a folder or cannot be written."""
    base = nearest_existing(path)
    if not base.is_dir():
        raise ValueError(f"{what} {path} cannot be made: {base} is a file, not a folder; {fix}")
    why = not_writable(base)
    if why:
        raise ValueError(f"{what} {path} cannot be written ({base}: {why}); {fix}")


def _relation(a: Path, b: Path) -> str | None:
    """How ``a`` stands to ``b``: 'is', 'sits inside', 'holds', or None."""
    if a == b:
        return "is"
    if b in a.parents:
        return "sits inside"
    if a in b.parents:
        return "holds"
    return None


# ---------------------------------------------------------------- outputs


def _keep_apart(path: Path, out, option: str, keep_away: dict | None, fix: str) -> None:
    """Refuse an output folder that is or holds the working folder, or is, holds or sits
    inside any of ``keep_away`` ({what: folder or None}, e.g. the cache and the data)."""
    for what, other in {"the working folder": Path.cwd().resolve(), **(keep_away or {})}.items():
        rel = other is not None and _relation(path, _resolved(other))
        if rel and (rel != "sits inside" or what != "the working folder"):
            raise ValueError(f"{option} {out} {rel} {what} ({other}): {fix}")


def check_out_dir(out, *, option: str = "--out", keep_away: dict | None = None) -> Path:
    """An output folder that the kit will replace as a whole: refused when it is a file,
    holds files the kit did not write, is (or holds) the working folder, the cache or the
    data, or cannot be written."""
    path = _resolved(out)
    fix = f"give a new folder, e.g. {option} runs/NAME"
    _keep_apart(path, out, option, keep_away, f"the kit replaces its output folder as a "
                f"whole; {fix}")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {out} is a file, not a folder; {fix}")
    if path.is_dir():
        alien = foreign_file(path)
        if alien:
            raise ValueError(f"{option} {out} holds {alien}, which unlearnkit did not write; "
                             f"the kit replaces its output folder as a whole, so it refuses "
                             f"one that is not its own: {fix}, or move that folder away")
    check_creatable(path.parent, f"{option}'s folder", f"{fix} where you can write")
    return path


def check_work_dir(out, *, option: str = "--out", keep_away: dict | None = None) -> Path:
    """A working folder the kit fills over several steps and reuses (kaggle-local's mock,
    a kernel folder): new, empty, or one the kit marked as its own (any content then, since
    the kit made it); never the working folder, the cache or the data."""
    path = _resolved(out)
    if path.is_dir() and any(path.iterdir()) and _listed(path / MARKER) is None:
        raise ValueError(f"{option} {out} already holds files and is not a folder unlearnkit "
                         f"made; give a new folder, e.g. {option} runs/NAME, or move it away")
    if not path.is_dir() or _listed(path / MARKER) is None:
        return check_out_dir(out, option=option, keep_away=keep_away)
    _keep_apart(path, out, option, keep_away, f"give a new folder, e.g. {option} runs/NAME")
    return path


def check_out_file(out, *, option: str = "--out", keep=None) -> Path:
    """An output file: refused when it is a folder, when it exists and ``keep(path)``
    (what the kit may replace) says no, or when its folder cannot be written."""
    path = _resolved(out)
    if path.is_dir():
        raise ValueError(f"{option} {out} is a folder; give a file name, e.g. "
                         f"{option} {Path(out) / 'report.json'}")
    if path.exists() and keep is not None and not keep(path):
        raise ValueError(f"{option} {out} exists and was not written by unlearnkit; it would "
                         f"be overwritten: give another file name, or move it away")
    check_creatable(path.parent, f"{option}'s folder", f"give a {option} where you can write")
    return path


def is_json_object(path: Path) -> bool:
    """Whether ``path`` holds a JSON object (a report the kit may replace)."""
    try:
        return isinstance(json.loads(path.read_text()), dict)
    except (OSError, ValueError):
        return False


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a torch checkpoint (a zip holding ``data.pkl``), or empty."""
    import zipfile

    if path.stat().st_size == 0:
        return True
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("data.pkl") for n in zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


# ---------------------------------------------------------------- inputs and stores


def cache_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$UNLEARNKIT_CACHE``, else ``data/cache`` under the working folder."""
    return Path(root or os.environ.get("UNLEARNKIT_CACHE") or Path.cwd() / "data" / "cache")


def check_cache(cache) -> Path:
    """The cache root (``--cache``, ``$UNLEARNKIT_CACHE`` or ``data/cache``): a folder
    that exists or can be made, and is writable (entries and their locks go there)."""
    path = cache_root(cache).expanduser()
    where = ("--cache" if cache else "$UNLEARNKIT_CACHE" if os.environ.get("UNLEARNKIT_CACHE")
             else "the default cache")
    fix = "point --cache (or UNLEARNKIT_CACHE) at a folder you can write"
    if path.exists() and not path.is_dir():
        raise ValueError(f"the cache {path} ({where}) is a file, not a folder; {fix}")
    check_creatable(path, f"the cache ({where})", fix)
    return path


def check_data_root(root, option: str = "--data") -> Path | None:
    """The data root, when given (``--data``, else ``$UNLEARNKIT_DATA``): not a file, and
    readable when it exists (a missing one is the source's to report)."""
    given = root or os.environ.get("UNLEARNKIT_DATA")
    if not given:
        return None
    where = option if root else "$UNLEARNKIT_DATA"
    path = _resolved(given)
    if path.exists() and not path.is_dir():
        raise ValueError(f"the data root {given} ({where}) is a file, not a folder; give "
                         f"the folder that holds the data (e.g. the one with retain.csv, or "
                         f"the CIFAR-10 folder)")
    if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
        raise ValueError(f"the data root {given} ({where}) cannot be read (permission "
                         f"denied); make it readable or give another {option}")
    return path


def check_input_file(path, option: str, what: str = "file") -> Path:
    """A file the command reads: exists, is a file, can be read."""
    p = _resolved(path)
    if not p.exists():
        raise ValueError(f"{option} {path} not found; check the path")
    if p.is_dir():
        raise ValueError(f"{option} {path} is a folder; give the {what} itself")
    try:
        with open(p, "rb") as fh:
            fh.read(1)
    except OSError as err:
        raise ValueError(f"{option} {path} cannot be read ({err.strerror}); make it "
                         f"readable or copy it somewhere you can read") from None
    return p


def sqlite_file(url: str) -> Path | None:
    """The database file of an ``sqlite:///`` URL (None for another database or memory)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix):] in ("", ":memory:"):
        return None
    return Path(url[len(prefix):].split("?")[0])


def check_storage(url: str, option: str = "--storage") -> None:
    """An SQLite study storage: its file is an SQLite database or absent (or empty), in a
    folder that exists or can be made and is writable. Other databases are optuna's."""
    path = sqlite_file(url)
    if path is None:
        return
    fix = "give another file, e.g. --storage sqlite:///data/studies/NAME.db"
    if path.is_dir():
        raise ValueError(f"{option} {url}: {path} is a folder, not a database file; {fix}")
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
        if head != SQLITE_HEADER:
            raise ValueError(f"{option} {url}: {path} is not an SQLite database (it would be "
                             f"overwritten by a new study); {fix}")
    if path.is_file() and not os.access(path, os.W_OK):
        raise ValueError(f"{option} {url}: {path} is read-only; {fix}")
    check_creatable(path.parent, f"{option}'s folder", fix)


def check_paths(*, out_dir=None, out_file=None, keep_file=None, cache: bool | str = False,
                data=False, storage: str | None = None, inputs: dict | None = None,
                out_option: str = "--out") -> None:
    """Every path of a command, before any work: ``inputs`` ({option: path}) read,
    ``data`` (the data root or None: ``$UNLEARNKIT_DATA``; False: none used), ``cache``
    (the ``--cache`` value or None for the default; False: none used), ``storage``, and
    the output (``out_dir`` replaced as a whole, or ``out_file``), kept away from the
    cache and the data."""
    for option, path in (inputs or {}).items():
        check_input_file(path, option)
    data_root = None if data is False else check_data_root(data)
    cache_dir = None if cache is False else check_cache(cache or None)
    if storage:
        check_storage(storage)
    if out_dir:
        check_out_dir(out_dir, option=out_option,
                      keep_away={"the cache": cache_dir, "the data root": data_root})
    if out_file:
        check_out_file(out_file, option=out_option, keep=keep_file)
