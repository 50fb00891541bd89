"""The method registry: every unlearning method under one name, with its config.

A method is a function ``fn(net, retain_loader, forget_loader, val_loader, *, seed,
**hyperparameters) -> net`` that changes ``net`` in place. It is recorded by
:func:`register_method` together with a dataclass of its hyperparameters (defaults =
the published settings) and the scenarios it serves. Method modules in this package are
imported automatically (names starting with ``_`` are skipped), so adding a method is
adding one file here and one YAML under ``configs/methods/``.

The harness and the Kaggle notebook both call :func:`run_method`: the same code, the
same hyperparameter resolution, the same checks.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

SCENARIOS = ("sample", "class")
SCENARIO_WORDS = {"sample": "sample-level forgetting", "class": "class removal"}


def _config_dir() -> Path | None:
    """``<repo>/configs/methods`` for a source checkout; None when the package sits too
    shallow for that (e.g. unpacked into a Kaggle notebook's folder)."""
    parents = Path(__file__).resolve().parents
    return parents[3] / "configs" / "methods" if len(parents) > 3 else None


CONFIG_DIR = _config_dir()


@dataclass(frozen=True)
class MethodSpec:
    """One registered method: its function, config dataclass, scenarios and summary."""

    name: str
    fn: Callable[..., nn.Module]
    config: type
    scenarios: tuple[str, ...]
    summary: str


_REGISTRY: dict[str, MethodSpec] = {}
_discovered = False


def register_method(name: str, *, config: type, scenarios=SCENARIOS, summary: str = ""):
    """Decorator: record ``fn`` under ``name`` with its hyperparameter dataclass."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"config of method {name!r} must be a dataclass type, got {config!r}")
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
        _REGISTRY[name] = MethodSpec(name, fn, config, scenarios, summary)
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


def _yaml_overrides(name: str, config_path: str | os.PathLike | None) -> dict:
    """Hyperparameters from a YAML file: ``config_path`` (file or folder) or the repo's."""
    if config_path is None:
        if CONFIG_DIR is None:
            return {}
        path, required = CONFIG_DIR / f"{name}.yaml", False
    else:
        path, required = Path(config_path), True
        if path.is_dir():
            path = path / f"{name}.yaml"
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"method config not found: {path}")
        return {}
    import yaml

    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of hyperparameter: value, not {values!r}")
    return values


def _check_names(spec: MethodSpec, values: dict, where: str) -> None:
    """Raise when ``values`` names a hyperparameter that ``spec``'s config lacks."""
    valid = [f.name for f in dataclasses.fields(spec.config)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {unknown} for method {spec.name!r} ({where}); "
            f"valid: {', '.join(valid)}"
        )


def resolve_hyperparameters(name: str, overrides: dict | None = None,
                            config_path: str | os.PathLike | None = None) -> dict:
    """Config defaults, then the method's YAML (when present), then ``overrides``."""
    spec = get_method(name)
    from_yaml = _yaml_overrides(name, config_path)
    _check_names(spec, from_yaml, "from its YAML file")
    _check_names(spec, overrides or {}, "from the overrides")
    merged = {**from_yaml, **(overrides or {})}
    defaults = dataclasses.asdict(spec.config())
    values = {k: _coerce(spec.name, k, v, defaults[k]) for k, v in merged.items()}
    return dataclasses.asdict(spec.config(**values))  # __post_init__ may validate


def _coerce(method: str, key: str, value, default):
    """``value`` as the type of ``default`` (YAML may give 1e-4 as a string, 1 as an int)."""
    kind = type(default)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{method}.{key} must be true or false, got {value!r}")
        return value
    if kind in (int, float) and not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is not None and (kind is float or number.is_integer()):
            return kind(number)
        raise ValueError(f"{method}.{key} must be a{'n integer' if kind is int else ' number'}, "
                         f"got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ValueError(f"{method}.{key} must be a string, got {value!r}")
    return value


def _check_not_empty(forget_loader) -> None:
    """Raise a clear error when the forget loader yields nothing."""
    try:
        empty = len(forget_loader) == 0
    except TypeError:
        empty = next(iter(forget_loader), None) is None
    if empty:
        raise ValueError(
            "the forget loader is empty: there is nothing to unlearn; "
            "check the split that built it"
        )


def _check_scenario(spec: MethodSpec, scenario_kind: str | None) -> None:
    """Raise when ``scenario_kind`` is unknown or not served by ``spec``."""
    if scenario_kind is None:
        return
    if scenario_kind not in SCENARIOS:
        raise ValueError(f"scenario_kind must be one of {SCENARIOS}, got {scenario_kind!r}")
    if scenario_kind not in spec.scenarios:
        served = " and ".join(SCENARIO_WORDS[s] for s in spec.scenarios)
        raise ValueError(
            f"{spec.name} serves only {served} (scenario {'/'.join(spec.scenarios)!r}), "
            f"but this forget set is a {scenario_kind!r} scenario "
            f"({SCENARIO_WORDS[scenario_kind]}); choose a method that serves it "
            f"(see list_methods())"
        )


def run_method(name: str, net: nn.Module, retain_loader, forget_loader, val_loader=None, *,
               seed: int, scenario_kind: str | None = None, **overrides) -> nn.Module:
    """Unlearn ``forget_loader`` from ``net`` in place with method ``name``; return ``net``.

    Hyperparameters come from :func:`resolve_hyperparameters` (``overrides`` last).
    ``scenario_kind`` ('sample' or 'class'), when given, is checked against the
    scenarios the method serves. ``torch.manual_seed(seed)`` is set before the call, and
    the method draws its own randomness (subsamples, data order) from ``seed``.
    """
    spec = get_method(name)
    _check_scenario(spec, scenario_kind)
    hyper = resolve_hyperparameters(name, overrides)
    _check_not_empty(forget_loader)
    torch.manual_seed(seed)
    return spec.fn(net, retain_loader, forget_loader, val_loader, seed=seed, **hyper)


__all__ = [
    "SCENARIOS",
    "MethodSpec",
    "get_method",
    "list_methods",
    "register_method",
    "resolve_hyperparameters",
    "run_method",
]
