"""Derived files come from their source: the README's method table from the registry, the
notebook from its source and the package; adding a method is adding one file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from unlearnkit.report.methods import BEGIN, COMMAND, END, markdown_table, splice

ROOT = Path(__file__).resolve().parents[1]

NEW_METHOD = '''"""A method added by a test: one file, nothing else."""
from dataclasses import dataclass

from ..params import param
from . import register_method
from ._common import MethodConfig


@dataclass
class ShrinkConfig(MethodConfig):
    factor: float = param(0.9, min=0, max=1, quick=0.5)
    """Every weight is multiplied by this."""


@register_method("one_file_shrink", config=ShrinkConfig, summary="shrink every weight")
def one_file_shrink(net, retain_loader, forget_loader, val_loader, *, seed, cfg):
    for p in net.parameters():
        p.data.mul_(cfg.factor)
    return net
'''

PROBE = '''
import json, sys, zipfile, base64, io
import nbformat
import unlearnkit
from unlearnkit.benchmarks import load_benchmark
from unlearnkit.cli import main
from unlearnkit.kaggle import notebook as nbk
from unlearnkit.harness.leaderboard import plan_methods

assert unlearnkit.__file__.startswith(sys.argv[1]), unlearnkit.__file__
main(["list"])
board = plan_methods(load_benchmark("digits"), None, {}, "sample")
nb = nbformat.read(str(nbk.build_notebook(out=sys.argv[2])), as_version=4)
cell = next(c for c in nb.cells if nbk.KIT_RE.search(c.source))
kit = nbk.unpack(nbk.KIT_RE.search(cell.source).group(0).split('"""')[1])
print(json.dumps({"board": sorted(board), "kit": sorted(kit)}))
'''


def test_readme_method_table_is_current():
    text = (ROOT / "README.md").read_text()
    current = splice(text, markdown_table()) == text
    assert current, f"README.md's method table is not the registry's; run `{COMMAND}`"


def test_splice_replaces_only_the_marked_part():
    text = f"a\n{BEGIN}\nold\n{END}\nb\n"
    assert splice(text, "new\n") == f"a\n{BEGIN}\nnew\n{END}\nb\n"


def test_a_method_is_one_file(tmp_path):
    """A method in one new file, in a copy of the package: `list` shows it, the leaderboard
    ranks it, a freshly built notebook carries it."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=ignore)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=ignore)
    (tmp_path / "src/unlearnkit/methods/one_file_shrink.py").write_text(NEW_METHOD)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path), str(tmp_path / "nb.ipynb")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    listing, _, found = out.stdout.rpartition("\n{")
    found = json.loads("{" + found)
    assert "one_file_shrink" in listing and "shrink every weight" in listing
    assert "one_file_shrink" in found["board"]
    assert "src/unlearnkit/methods/one_file_shrink.py" in found["kit"]
