"""Settings files read as one mapping of ``field: value``, or refused in one line.

Every YAML the user hands the kit (a benchmark, a method's ``--config``) goes through
:func:`read_mapping`: malformed YAML is named by file, line and column; an empty file,
a list or a lone value is refused with what the file should hold.
"""

from __future__ import annotations

import os


def read_mapping(path: str | os.PathLike, what: str, text: str | None = None,
                 empty_ok: bool = False) -> dict:
    """The mapping held by the YAML file ``path`` (``text``: its content, when read
    already); ``what`` names the file's kind in messages ('benchmark YAML'). An empty
    file is refused unless ``empty_ok`` (then it holds no setting: {})."""
    import yaml

    if text is None:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(yaml_error_line(path, err)) from None
    if data is None and empty_ok:
        return {}
    if data is None:
        raise ValueError(f"{path} is empty; a {what} holds a mapping of field: value, one "
                         f"per line")
    if not isinstance(data, dict):
        kind = "list" if isinstance(data, list) else f"single {type(data).__name__}"
        raise ValueError(f"{path} holds a {kind} ({_short(data)}), not a mapping of field: "
                         f"value; a {what} holds one 'field: value' per line")
    return data


def yaml_error_line(path, err) -> str:
    """A YAML parse error as one line: the file, the line and column (1-based), why."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
    why = " ".join(str(getattr(err, "problem", None) or err).split())
    return f"{path}{where}: malformed YAML ({why}); fix that line"


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
