"""``key=value`` settings from the command line, with values read as Python literals."""

from __future__ import annotations

import ast


def parse_value(text: str):
    """A ``--set`` value: a Python literal (``1e-3``, ``[1, 2]``, ``'x'``), true/false/none,
    else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("none", "null"):
            return None
        return text


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
