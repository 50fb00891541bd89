"""A method's settings, each value with the layer that set it.

Five layers, later ones winning: the config dataclass's defaults (``default``), the kit's
``configs/methods/<name>.yaml``, the benchmark's ``method_overrides``, ``--config FILE``
and ``--set KEY=VALUE``. :func:`method_settings` is the one place they are merged
(through :func:`unlearnkit.methods.resolve_layers`); ``unlearnkit list METHOD --bench B``
prints its trace and ``local-eval`` writes it into ``report.json``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .methods import MethodConfig, resolve_layers, yaml_layer

if TYPE_CHECKING:
    from .benchmarks import Benchmark


@dataclass(frozen=True)
class Settings:
    """A method's resolved config and, per field, the layer that set its value."""

    method: str
    config: MethodConfig
    sources: dict[str, str]

    def trace(self) -> list[dict]:
        """``[{field, value, source}]`` in field order: JSON-ready."""
        return [{"field": k, "value": v, "source": self.sources[k]}
                for k, v in self.config.to_dict().items()]


def method_settings(method: str, bench: Benchmark | None = None,
                    config_file: str | os.PathLike | None = None,
                    sets: dict | None = None) -> Settings:
    """The settings of ``method`` on ``bench`` (None: no benchmark layer), with
    ``config_file``'s YAML (a file, or a folder of ``<method>.yaml``) and ``sets`` on top."""
    layers = []
    if bench is not None:
        layers.append((f"benchmark {bench.name}: method_overrides",
                       bench.method_overrides.get(method, {})))
    if config_file:
        layers.append(yaml_layer(method, config_file))
    layers.append(("--set", sets or {}))
    cfg, sources = resolve_layers(method, layers)
    return Settings(method, cfg, sources)
