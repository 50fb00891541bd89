"""scripts/pack_images.py: an image folder packed into one file comes back byte for byte."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from script_modules import load_script


@pytest.fixture(scope="module")
def pack_images():
    return load_script("pack_images")


def make_folder(root: Path) -> dict[str, bytes]:
    """train/test class folders of small JPEGs and PNGs, plus a non-image file."""
    rng = np.random.default_rng(0)
    files = {}
    for split, cls, name, fmt in [("train", "cat", "0.jpg", "JPEG"), ("train", "cat", "1.png", "PNG"),
                                  ("train", "dog", "0.jpg", "JPEG"), ("test", "dog", "7.jpg", "JPEG")]:
        path = root / split / cls / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path, fmt)
        files[f"{split}/{cls}/{name}"] = path.read_bytes()
    (root / "README.txt").write_text("not an image")
    return files


def test_round_trip_gives_back_the_same_files(tmp_path, pack_images):
    files = make_folder(tmp_path / "src")
    packed = tmp_path / "pack.npz"
    assert pack_images.main(["pack", str(tmp_path / "src"), str(packed)]) == 0
    assert packed.stat().st_size < sum(len(b) for b in files.values()) + 4096
    assert pack_images.main(["unpack", str(packed), str(tmp_path / "out")]) == 0
    got = {p.relative_to(tmp_path / "out").as_posix(): p.read_bytes()
           for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert got == files  # every image, byte for byte, and nothing else


def test_empty_folder_and_unsafe_paths_are_refused(tmp_path, pack_images, capsys):
    (tmp_path / "empty").mkdir()
    assert pack_images.main(["pack", str(tmp_path / "empty"), str(tmp_path / "p.npz")]) == 1
    assert "no image files" in capsys.readouterr().err
    evil = tmp_path / "evil.npz"
    np.savez(evil, data=np.zeros(3, np.uint8), offsets=np.array([0, 3]),
             paths=np.frombuffer(b"../escape.jpg", np.uint8))
    assert pack_images.main(["unpack", str(evil), str(tmp_path / "out")]) == 1
    assert "outside the target folder" in capsys.readouterr().err
    assert not (tmp_path / "escape.jpg").exists()
