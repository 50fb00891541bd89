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
