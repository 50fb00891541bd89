"""``key=value`` settings from the command line, with values read as Python literals."""

from __future__ import annotations

import ast


def parse_value(text: str):
    """A ``--set`` value: a Python literal (``1e-3``, ``[1, 2]``, ``'x'``), a YAML flow
    mapping or list (``{a: 0.5, b: 0.5}``, as a YAML file writes it), true/false/none,
    else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if text.strip()[:1] in ("{", "["):
            return _yaml_flow(text)
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("none", "null"):
            return None
        return text


def _yaml_flow(text: str):
    """``{a: 0.5}`` or ``[a, b]`` read as YAML; refused in one line when it is neither
    Python nor YAML."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        why = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ValueError(f"--set value {text!r} is neither a Python literal nor YAML ({why}); "
                         "write a mapping as {'a': 0.5, 'b': 0.5} or {a: 0.5, b: 0.5}, "
                         "quoted for the shell") from None


def parse_assignments(items: list[str] | None) -> dict:
    """``["lr=1e-3", "epochs=2"]`` -> ``{"lr": 0.001, "epochs": 2}``."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"--set expects key=value with a hyperparameter name, got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def parse_method_assignments(items: list[str] | None) -> dict[str, dict]:
    """``["unsir.impair_lr=1e-3"]`` -> ``{"unsir": {"impair_lr": 0.001}}`` (names are
    checked later, when each method's config is resolved)."""
    out: dict[str, dict] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        method, dot, name = key.strip().partition(".")
        if not sep or not dot or not method or not name.isidentifier():
            raise ValueError(f"--set expects METHOD.KEY=VALUE (e.g. unsir.impair_lr=1e-3), "
                             f"got {item!r}")
        out.setdefault(method, {})[name] = parse_value(value.strip())
    return out
