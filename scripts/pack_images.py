"""Pack an image folder into one file and back, to carry a dataset where many files cannot go.

The device machine takes at most 64 MiB of working tree; CIFAR-10 as JPEG files is 55 MB
of bytes but 236 MB on disk (one block per small file), and a tar adds 0.5-1.5 KB per
file. Here the files' bytes are stored back to back in one uncompressed ``.npz``
(``data`` uint8, ``offsets`` int64 [n + 1], ``paths`` the relative paths joined by
newlines), so the pack is the files' bytes plus a few hundred kB. Nothing is decoded or
re-encoded: ``unpack`` gives back the very files.

    python scripts/pack_images.py pack "$UNLEARNKIT_DATA" .gpu/cifar10.npz
    python scripts/pack_images.py unpack .gpu/cifar10.npz .gpu/cifar10
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from unlearnkit.atomic import atomic_path
from unlearnkit.data.cifar10 import IMAGE_EXTS


def image_files(folder: Path) -> list[Path]:
    """Every image file under ``folder``, relative to it, in sorted order."""
    found = sorted(p.relative_to(folder) for p in folder.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not found:
        raise FileNotFoundError(f"no image files ({', '.join(sorted(IMAGE_EXTS))}) under {folder}")
    return found


def pack(folder: Path, out: Path) -> int:
    """Write ``folder``'s image files into ``out``; returns the number of files."""
    rel = image_files(folder)
    blobs = [(folder / p).read_bytes() for p in rel]
    offsets = np.zeros(len(blobs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    data = np.frombuffer(b"".join(blobs), np.uint8)
    paths = np.frombuffer("\n".join(p.as_posix() for p in rel).encode(), np.uint8)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.savez(f, data=data, offsets=offsets, paths=paths)
    return len(rel)


def unpack(packed: Path, folder: Path) -> int:
    """Recreate the packed files under ``folder``; returns the number of files."""
    with np.load(packed) as z:
        data, offsets = z["data"], z["offsets"]
        rel = bytes(z["paths"]).decode().split("\n")
    if len(rel) != len(offsets) - 1:
        raise ValueError(f"{packed} is damaged: {len(rel)} paths for {len(offsets) - 1} files")
    for i, name in enumerate(rel):
        if name.startswith("/") or ".." in Path(name).parts:
            raise ValueError(f"{packed} names a file outside the target folder: {name!r}")
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            Path(tmp).write_bytes(data[offsets[i]:offsets[i + 1]].tobytes())
    return len(rel)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("pack", help="folder -> one .npz")
    a.add_argument("folder", type=Path)
    a.add_argument("out", type=Path)
    b = sub.add_parser("unpack", help="one .npz -> folder")
    b.add_argument("packed", type=Path)
    b.add_argument("folder", type=Path)
    args = p.parse_args(argv)
    try:
        if args.command == "pack":
            n = pack(args.folder, args.out)
            print(f"packed {n} files into {args.out} ({os.path.getsize(args.out) / 2**20:.1f} MiB)")
        else:
            n = unpack(args.packed, args.folder)
            print(f"unpacked {n} files into {args.folder}")
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
