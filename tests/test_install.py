"""The install outside the checkout: pyproject.toml declares everything src/ imports, and
the configs ship as package data (scripts/check_install.sh installs a wheel and runs it)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
DIST = {"PIL": "pillow", "sklearn": "scikit-learn", "yaml": "pyyaml"}  # import -> distribution
NOT_IMPORTED = {"kaggle", "ipykernel"}  # the kaggle CLI and nbclient's kernel: run, not imported


def _imported_tops() -> set[str]:
    tops = set()
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops.add(node.module.split(".")[0])
    return tops - set(sys.stdlib_module_names) - {"unlearnkit", "__future__"}


def _names(specs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", s, maxsplit=1)[0].lower() for s in specs}


def test_pyproject_declares_every_import():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _names(project["dependencies"])
    extras = {name for specs in project["optional-dependencies"].values()
              for name in _names(specs)}
    needed = {DIST.get(top, top).lower() for top in _imported_tops()}
    missing = needed - declared - extras
    assert not missing, f"src/ imports {sorted(missing)}, which pyproject.toml does not declare"
    assert NOT_IMPORTED <= declared
    assert "ray" in extras and "ray" not in declared  # the optional executor stays an extra
    assert {"torch==2.14.1", "torchvision==0.29.1"} <= set(project["dependencies"])


def test_configs_are_package_data():
    from unlearnkit.benchmarks import benchmark_names
    from unlearnkit.resources import config_dir

    assert "digits" in benchmark_names()
    assert Path(str(config_dir("benchmarks"))).is_relative_to(ROOT / "src" / "unlearnkit")
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "configs/*/*.yaml" in data["package-data"]["unlearnkit"]
