"""The configs the kit ships as package data (``unlearnkit/configs/``), found with
:mod:`importlib.resources`, so an installed wheel reads them as a checkout does."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importlib.resources.abc is Python 3.11+; the notebook may run 3.10
    from importlib.resources.abc import Traversable


def config_dir(kind: str) -> Traversable:
    """``unlearnkit/configs/<kind>`` (kind: 'benchmarks' or 'methods')."""
    return resources.files("unlearnkit").joinpath("configs", kind)


def config_file(kind: str, name: str) -> Traversable:
    """``unlearnkit/configs/<kind>/<name>.yaml`` (it may not exist)."""
    return config_dir(kind).joinpath(f"{name}.yaml")


def config_names(kind: str) -> list[str]:
    """The stems of the YAML files under ``unlearnkit/configs/<kind>``, sorted."""
    folder = config_dir(kind)
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
