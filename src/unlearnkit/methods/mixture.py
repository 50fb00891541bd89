"""Mixture: checkpoint i runs one of several methods, by declared shares.

The competition scores 512 checkpoints as a set, so a submission may split them between
algorithms (the 5th-place team, toshi_k + marvelworld, gave about half to each of two).
Run ``i`` (the harness's seed ``i``, the notebook's checkpoint ``i``: both number runs
from 0) goes to the component with the largest deficit ``share * (i + 1) - runs so far``
(ties: the first name in alphabetical order, so the order the shares are written in
changes nothing), so every prefix of the runs matches the shares to within
one run, and the same index always picks the same component. That component then runs
exactly as on its own with the same seed (``run_method`` with its resolved config), so a
mixture's run ``i`` is the component's run ``i``: the harness reuses the component's
cached run instead of running it again (``MethodConfig.delegate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from ..params import param
from . import register_method
from ._common import MethodConfig

NAME = "mixture"
TOLERANCE = 1e-6  # how far the shares' sum may be from 1


@dataclass
class MixtureConfig(MethodConfig):
    """Which methods share the runs, and how (defaults: the issue's example pair of the
    3rd- and 4th-place solutions, half each)."""

    shares: dict = param({"reinit_lowgrad": 0.5, "perturb_finetune": 0.5})
    """``{method: share}``: the fraction of the runs each method gets; each in (0, 1],
    summing to 1 (the 5th-place team: about half each)."""
    settings: dict = param({})
    """``{method: {hyperparameter: value}}``: overrides for a component (its keys must be
    among ``shares``; otherwise each component uses its own defaults and YAML)."""

    def __post_init__(self):
        super().__post_init__()
        _check_shares(self.shares)
        _check_settings(self.settings, self.shares)
        for name in self.shares:
            self.component_config(name)  # a bad override fails here, before any run

    @classmethod
    def quick(cls, **overrides) -> MixtureConfig:
        """Tiny budgets for tests: each component's own ``quick`` values."""
        from . import get_method

        shares = overrides.get("shares", cls().shares)
        settings = {m: get_method(m).config.quick().changed() for m in shares}
        return cls.build({"shares": shares, "settings": settings, **overrides},
                         where="quick values")

    def component(self, index: int) -> str:
        """The method that run ``index`` (0-based) uses."""
        if index < 0:
            raise ValueError(f"a run index is >= 0, got {index}")
        return assignment(self.shares, index + 1)[index]

    def component_config(self, name: str):
        """Component ``name``'s resolved config (its defaults, YAML, then ``settings``)."""
        from . import resolve_config

        return resolve_config(name, self.settings.get(name, {}))

    def delegate(self, seed: int) -> tuple[str, MethodConfig]:
        name = self.component(seed)
        return name, self.component_config(name)

    def served_scenarios(self, registered: tuple[str, ...]) -> tuple[str, ...]:
        from . import serves

        common = [s for s in registered
                  if all(s in serves(m, self.component_config(m)) for m in self.shares)]
        return tuple(common)

    def uses_forget(self, registered: bool) -> bool:
        from . import get_method

        return any(self.component_config(m).uses_forget(get_method(m).needs_forget)
                   for m in self.shares)


def assignment(shares: dict[str, float], runs: int) -> list[str]:
    """The component of each of the first ``runs`` runs (largest deficit first)."""
    names = sorted(shares)
    counts = dict.fromkeys(names, 0)
    out = []
    for i in range(runs):
        pick = max(names, key=lambda m: (shares[m] * (i + 1) - counts[m], -names.index(m)))
        counts[pick] += 1
        out.append(pick)
    return out


def _check_shares(shares) -> None:
    """Refuse shares that are not ``{known method: number in (0, 1]}`` summing to 1."""
    from . import list_methods

    if not isinstance(shares, dict) or not shares:
        raise ValueError(f"mixture.shares must be a non-empty mapping {{method: share}}, "
                         f"e.g. {{'reinit_lowgrad': 0.5, 'perturb_finetune': 0.5}}; "
                         f"got {shares!r}")
    known = list_methods()
    for name, share in shares.items():
        if name == NAME:
            raise ValueError("a mixture cannot contain itself; list the methods it mixes")
        if name not in known:
            raise ValueError(f"mixture.shares names unknown method {name!r}; choose among: "
                             f"{', '.join(m for m in known if m != NAME)}")
        if isinstance(share, bool) or not isinstance(share, (int, float)) \
                or not math.isfinite(share) or not 0 < share <= 1:
            raise ValueError(f"mixture.shares[{name!r}] = {share!r} must be a number in (0, 1]")
    total = sum(shares.values())
    if abs(total - 1) > TOLERANCE:
        raise ValueError(f"mixture.shares sum to {total:g}, not 1: {shares}; make the "
                         f"fractions of the runs add up to 1")


def _check_settings(settings, shares: dict) -> None:
    """Refuse settings that are not ``{component: {field: value}}`` for listed components."""
    if not isinstance(settings, dict):
        raise ValueError(f"mixture.settings must be a mapping {{method: {{field: value}}}}, "
                         f"got {settings!r}")
    for name, values in settings.items():
        if name not in shares:
            raise ValueError(f"mixture.settings names {name!r}, which is not among the "
                             f"shares {list(shares)}; add it to shares or drop its settings")
        if not isinstance(values, dict):
            raise ValueError(f"mixture.settings[{name!r}] must be a mapping of "
                             f"hyperparameter: value, got {values!r}")


@register_method(
    NAME,
    config=MixtureConfig,
    summary="run i uses method A or B by declared shares (largest deficit), each as on its "
            "own with the same seed (5th place's split of the 512 checkpoints)",
)
def mixture(net: nn.Module, retain_loader, forget_loader, val_loader, *, seed: int,
            cfg: MixtureConfig) -> nn.Module:
    """Run the component that run number ``seed`` is assigned to."""
    from . import run_method

    name, component_cfg = cfg.delegate(seed)
    return run_method(name, net, retain_loader, forget_loader, val_loader, seed=seed,
                      cfg=component_cfg)
