"""The method registry: every unlearning method under one name, with its config.

A method is a function ``fn(net, retain_loader, forget_loader, val_loader, *, seed,
cfg) -> net`` that changes ``net`` in place; ``cfg`` is an instance of its config
dataclass (a :class:`MethodConfig` whose fields, declared with
:func:`unlearnkit.params.param`, carry the published defaults, valid ranges, quick-test
values and docstrings). It is recorded by :func:`register_method` with that dataclass
and the scenarios it serves. Method modules in this package are imported automatically
(names starting with ``_`` are skipped), so adding a method is adding one file here;
``unlearnkit/configs/methods/<name>.yaml`` is needed only to override defaults.

The harness and the Kaggle notebook both resolve the config once with
:func:`resolve_config` and call :func:`run_method` with it: the same code, the same
checks.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..resources import config_file
from ._common import MethodConfig

SCENARIOS = ("sample", "class")
SCENARIO_WORDS = {"sample": "sample-level forgetting", "class": "class removal"}


@dataclass(frozen=True)
class MethodSpec:
    """One registered method: its function, config dataclass, scenarios and summary."""

    name: str
    fn: Callable[..., nn.Module]
    config: type
    scenarios: tuple[str, ...]
    summary: str
    needs_forget: bool = True
    """False for methods that use only retain (and validation) data."""


_REGISTRY: dict[str, MethodSpec] = {}
_discovered = False


def register_method(name: str, *, config: type, scenarios=SCENARIOS, summary: str = "",
                    needs_forget: bool = True):
    """Decorator: record ``fn`` under ``name`` with its config dataclass."""
    if not (isinstance(config, type) and issubclass(config, MethodConfig)):
        raise TypeError(f"config of method {name!r} must be a MethodConfig dataclass, "
                        f"got {config!r}")
    scenarios = tuple(scenarios)
    bad = [s for s in scenarios if s not in SCENARIOS]
    if bad or not scenarios:
        raise ValueError(f"scenarios of method {name!r} must be among {SCENARIOS}, got {scenarios}")

    def wrap(fn):
        old = _REGISTRY.get(name)
        if old is not None and _qualified(old.fn) != _qualified(fn):
            raise ValueError(
                f"method name {name!r} is taken by {_qualified(old.fn)}; pick another name"
            )
        config.label = name  # messages about its fields name the method
        _REGISTRY[name] = MethodSpec(name, fn, config, scenarios, summary, needs_forget)
        return fn

    return wrap


def _qualified(fn) -> str:
    """``module.qualname`` of a function: identifies it across module reloads."""
    return f"{fn.__module__}.{fn.__qualname__}"


def _discover() -> None:
    """Import every public module of this package once, so its methods register."""
    global _discovered
    if _discovered:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    _discovered = True


def list_methods() -> list[str]:
    """Names of all registered methods, sorted."""
    _discover()
    return sorted(_REGISTRY)


def get_method(name: str) -> MethodSpec:
    """The :class:`MethodSpec` registered under ``name``."""
    _discover()
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(list_methods())}")
    return _REGISTRY[name]


def yaml_layer(name: str, config_path: str | os.PathLike | None = None) -> tuple[str, dict]:
    """``(label, overrides)`` from a YAML file: ``config_path`` (file or folder), else the
    kit's ``configs/methods/<name>.yaml`` when one exists (they are optional)."""
    if config_path is None:
        path, required = config_file("methods", name), False
        label = f"configs/methods/{name}.yaml"
    else:
        path, required = Path(config_path), True
        if path.is_dir():
            path = path / f"{name}.yaml"
        label = f"--config {path}"
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"method config not found: {path}")
        return label, {}
    from ..yaml_files import read_mapping

    values = read_mapping(path, f"{name} settings file", empty_ok=True)  # file, line, column
    get_method(name).config.build(values, where=f"from its YAML file {path}")  # names it
    return label, values


def _yaml_overrides(name: str, config_path: str | os.PathLike | None) -> dict:
    """The overrides of :func:`yaml_layer` alone."""
    return yaml_layer(name, config_path)[1]


def resolve_layers(name: str, layers=()) -> tuple[MethodConfig, dict[str, str]]:
    """The method's config and, per field, the layer that set it: dataclass defaults
    ('default'), then its YAML (if any), then each ``(label, overrides)`` of ``layers``
    in order, later layers winning. Every name, type and range is checked here."""
    spec = get_method(name)
    values, sources = {}, {}
    for label, overrides in [yaml_layer(name), *layers]:
        values.update(overrides or {})
        sources.update(dict.fromkeys(overrides or {}, label))
    cfg = spec.config.build(values, where="from the overrides")
    return cfg, {f: sources.get(f, "default") for f in cfg.field_names()}


def resolve_config(name: str, overrides: dict | None = None,
                   config_path: str | os.PathLike | None = None) -> MethodConfig:
    """The method's config: dataclass defaults, then its YAML (if any), then the YAML at
    ``config_path`` (if given), then ``overrides``.

    The result is what :func:`run_method` takes, in the harness and in the notebook alike.
    """
    layers = [yaml_layer(name, config_path)] if config_path else []
    return resolve_layers(name, [*layers, ("overrides", overrides or {})])[0]


def _check_not_empty(forget_loader) -> None:
    """Raise a clear error when the forget loader yields nothing (for methods that use it)."""
    try:
        empty = len(forget_loader) == 0
    except TypeError:
        empty = next(iter(forget_loader), None) is None
    if empty:
        raise ValueError(
            "the forget loader is empty: there is nothing to unlearn; "
            "check the split that built it"
        )


def check_serves(name: str, cfg: MethodConfig | None, scenario_kind: str | None,
                 where: str = "this forget set", otherwise: str = "") -> None:
    """Raise, saying what to do, when method ``name`` run with ``cfg`` (its defaults when
    None) cannot serve ``scenario_kind`` ('sample' or 'class'; None: not known yet);
    ``otherwise`` adds a second way out to the message."""
    if scenario_kind is None:
        return
    if scenario_kind not in SCENARIOS:
        raise ValueError(f"scenario_kind must be one of {SCENARIOS}, got {scenario_kind!r}")
    served = serves(name, cfg)
    if scenario_kind not in served:
        words = " and ".join(SCENARIO_WORDS[s] for s in served) or "no scenario"
        raise ValueError(
            f"{name} serves only {words} ({'/'.join(served) or 'none'}), but "
            f"{where} is {SCENARIO_WORDS[scenario_kind]} ({scenario_kind!r}); choose a "
            f"method that serves it (`unlearnkit list`){otherwise}"
        )


def serves(name: str, cfg: MethodConfig | None = None) -> tuple[str, ...]:
    """The scenarios method ``name`` serves when run with ``cfg`` (its defaults when None)."""
    spec = get_method(name)
    return (spec.config() if cfg is None else cfg).served_scenarios(spec.scenarios)


def run_method(name: str, net: nn.Module, retain_loader, forget_loader, val_loader=None, *,
               seed: int, cfg: MethodConfig | None = None,
               scenario_kind: str | None = None) -> nn.Module:
    """Unlearn ``forget_loader`` from ``net`` in place with method ``name``; return ``net``.

    ``cfg`` is the method's resolved config (:func:`resolve_config`; its defaults when
    None). ``scenario_kind`` ('sample' or 'class'), when given, is checked against the
    scenarios the method serves. ``torch.manual_seed(seed)`` is set before the call, and
    the method draws its own randomness (subsamples, data order) from ``seed``.
    """
    spec = get_method(name)
    cfg = spec.config() if cfg is None else cfg
    if not isinstance(cfg, spec.config):
        raise TypeError(f"cfg of method {name!r} must be a {spec.config.__name__}, "
                        f"got {type(cfg).__name__}; build it with resolve_config({name!r}, ...)")
    check_serves(name, cfg, scenario_kind)
    if cfg.uses_forget(spec.needs_forget):
        _check_not_empty(forget_loader)
    torch.manual_seed(seed)
    return spec.fn(net, retain_loader, forget_loader, val_loader, seed=seed, cfg=cfg)


__all__ = [
    "SCENARIOS",
    "MethodConfig",
    "check_serves",
    "MethodSpec",
    "get_method",
    "list_methods",
    "register_method",
    "resolve_config",
    "resolve_layers",
    "run_method",
    "serves",
    "yaml_layer",
]
