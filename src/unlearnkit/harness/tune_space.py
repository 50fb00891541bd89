"""The search space of a tuning study: declared beside each config field, narrowed by hand.

Each field's ``search`` (:class:`unlearnkit.params.Space`, in the method's config
dataclass) is where ``unlearnkit tune`` looks. On the command line,
``--space NAME=LOW:HIGH`` (linear), ``--space NAME=LOW:HIGH:log`` or, for a field with
choices or a text or true/false field, ``--space NAME=A,B`` replaces that field's range
(and may add a field that declares none); ``--set NAME=VALUE`` fixes a field, which takes
it out of the search.
Every range is checked against what its field accepts before any work.

Floats are rounded to 3 significant digits when suggested (a readable ``best.yaml``,
and a repeated setting hits the run cache).
"""

from __future__ import annotations

import dataclasses

from ..assignments import parse_value
from ..params import Config, Space, declaration

SYNTAX = ("NAME=LOW:HIGH, NAME=LOW:HIGH:log, or NAME=A,B for a field with choices or a "
          "text or true/false field")
DIGITS = 3  # significant digits of a suggested float


def declared(cls: type[Config]) -> dict[str, Space]:
    """``{field: Space}`` of the fields whose declaration carries a ``search``."""
    return {f.name: declaration(f).search for f in dataclasses.fields(cls)
            if declaration(f).search is not None}


def kinds(cls: type[Config]) -> dict[str, type]:
    """The type of each field's default (int, float, str, ...)."""
    inst = cls()
    return {f.name: type(getattr(inst, f.name)) for f in dataclasses.fields(cls)}


def parse_item(cls: type[Config], item: str) -> tuple[str, Space]:
    """One ``--space`` item as ``(field, Space)``, checked against the field."""
    name, sep, text = item.partition("=")
    name, text = name.strip(), text.strip()
    if not sep or not name or not text:
        raise ValueError(f"--space expects {SYNTAX}; got {item!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields or name == "progress":
        valid = ", ".join(n for n in fields if n != "progress")
        raise ValueError(f"--space {item!r}: {cls.label or cls.__name__} has no field {name!r}; "
                         f"its fields: {valid}")
    bounds = declaration(fields[name]).bounds
    if bounds.choices is not None or kinds(cls)[name] in (str, bool):
        space = Space(choices=tuple(parse_value(c.strip()) for c in text.split(",")))
    else:
        parts = text.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "linear")):
            raise ValueError(f"--space {item!r}: expected {SYNTAX}")
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"--space {item!r}: LOW and HIGH must be numbers ({SYNTAX})") from None
        space = Space(low, high, log=len(parts) == 3 and parts[2] == "log")
    check(cls, name, space)
    return name, space


def check(cls: type[Config], name: str, space: Space) -> None:
    """Refuse a space its field cannot take: outside the accepted values, empty, a log
    scale reaching 0, an integer field with fractional ends."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    bounds = declaration(f).bounds
    where = f"search space {space.describe()} of {cls.label or cls.__name__}.{name}"
    kind = kinds(cls)[name]
    if bounds.choices is not None or space.choices is not None:
        if space.choices is None or not space.choices:
            raise ValueError(f"{where}: {name} takes one of {bounds.describe()}; give "
                             f"--space {name}=A,B with some of them")
        bad = [c for c in space.choices if bounds.violation(c)
               or (kind in (str, bool) and not isinstance(c, kind))]
        if bad:
            raise ValueError(f"{where}: {bad} not accepted; {name} takes one of "
                             f"{bounds.describe()}")
        return
    if kind not in (int, float):
        raise ValueError(f"{where}: {name} is a {kind.__name__}, which cannot be searched")
    for end in (space.low, space.high):
        why = bounds.violation(kind(end) if kind is int else end)
        if why:
            raise ValueError(f"{where}: its end {end:g} {why} (what {name} accepts); "
                             f"narrow it")
    if not space.low < space.high:
        raise ValueError(f"{where}: LOW must be below HIGH")
    if space.log and space.low <= 0:
        raise ValueError(f"{where}: a log scale needs LOW > 0")
    if kind is int and not (float(space.low).is_integer() and float(space.high).is_integer()):
        raise ValueError(f"{where}: {name} is an integer; give whole ends")


def resolve(cls: type[Config], items: list[str] | None, fixed: dict) -> dict[str, Space]:
    """The study's space: the declared one, minus the fixed fields, with ``--space``
    items applied; refused when empty or when a field is both fixed and searched."""
    narrowed = dict(parse_item(cls, item) for item in items or [])
    both = sorted(set(narrowed) & set(fixed))
    if both:
        raise ValueError(f"{both} given both to --space and --set; a fixed field is not "
                         "searched, drop one of them")
    space = {k: v for k, v in declared(cls).items() if k not in fixed}
    space.update(narrowed)
    if not space:
        raise ValueError(f"{cls.label or cls.__name__} has nothing to search: no field "
                         f"declares a search space (or all are fixed); add --space {SYNTAX}")
    return space


def suggest(trial, name: str, space: Space, kind: type):
    """The trial's value for ``name`` (optuna's suggest_*), floats rounded."""
    if space.choices is not None:
        return trial.suggest_categorical(name, list(space.choices))
    if kind is int:
        return trial.suggest_int(name, int(space.low), int(space.high), log=space.log)
    value = trial.suggest_float(name, float(space.low), float(space.high), log=space.log)
    rounded = float(f"{value:.{DIGITS}g}")
    return rounded if space.low <= rounded <= space.high else value


def default_point(cfg: Config, space: dict[str, Space]) -> dict:
    """The config's values of the searched fields that lie inside their ranges: the
    first trial of a new study (the score before tuning)."""
    out = {}
    for name, sp in space.items():
        value = getattr(cfg, name)
        inside = (value in sp.choices if sp.choices is not None
                  else sp.low <= value <= sp.high)
        if inside:
            out[name] = value
    return out
