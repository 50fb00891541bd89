"""Config dataclasses that explain and check themselves.

A config is a dataclass deriving :class:`Config` whose fields are declared with
:func:`param`: the default, the valid range or choices, the small value the tests use
(``quick``) and the range a tuner may search (``search``), all beside the field, with a
one-line docstring under it saying what it is and where the default came from. The
docstrings are read from the source (:func:`field_docs`) so that ``unlearnkit list
METHOD`` and every error message can quote them.

Values are checked once, when the config is built (``__post_init__``): a value out of
range is refused with the field's docstring in the message.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import textwrap
from dataclasses import dataclass
from typing import Any, ClassVar

_KEY = "unlearnkit"  # the metadata key of a field's declaration


@dataclass(frozen=True)
class Space:
    """Where a tuner may look: ``[low, high]``, on a log scale when ``log``; or, for a
    field with choices, some of them (``Space(choices=("a", "b"))``)."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None

    def describe(self) -> str:
        """``1e-05:0.01:log``, ``1:5`` or ``a,b``: the ``--space`` syntax of ``tune``."""
        if self.choices is not None:
            return ",".join(str(c) for c in self.choices)
        return f"{self.low:g}:{self.high:g}" + (":log" if self.log else "")


@dataclass(frozen=True)
class Bounds:
    """What a field accepts: a closed or open interval, or a list of choices."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: tuple | None = None

    def violation(self, value) -> str | None:
        """Why ``value`` is refused (text), or None when it is accepted."""
        if self.choices is not None:
            return None if value in self.choices else f"must be one of {list(self.choices)}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        low_bad = self.min is not None and (value <= self.min if self.min_open else value < self.min)
        high_bad = self.max is not None and (value >= self.max if self.max_open else value > self.max)
        return f"must be in {self.describe()}" if low_bad or high_bad else None

    def describe(self) -> str:
        """The accepted values as text: ``[0, 1]``, ``(0, inf)``, ``{'a', 'b'}``."""
        if self.choices is not None:
            return "{" + ", ".join(repr(c) for c in self.choices) + "}"
        if self.min is None and self.max is None:
            return "any"
        lo = "-inf" if self.min is None else _num(self.min)
        hi = "inf" if self.max is None else _num(self.max)
        left = "(" if self.min_open or self.min is None else "["
        right = ")" if self.max_open or self.max is None else "]"
        return f"{left}{lo}, {hi}{right}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e6 else f"{x:g}"


@dataclass(frozen=True)
class Declaration:
    """What :func:`param` records about a field."""

    bounds: Bounds
    quick: Any = None
    search: Space | None = None


def param(default, *, min=None, max=None, min_open=False, max_open=False, choices=None,
          quick=None, search: Space | None = None):
    """A config field: its default, valid range (or ``choices``), quick-test value and
    search space. ``min_open`` / ``max_open`` exclude the bound itself."""
    decl = Declaration(Bounds(min, max, min_open, max_open,
                              tuple(choices) if choices is not None else None), quick, search)
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default),
                                 metadata={_KEY: decl})
    return dataclasses.field(default=default, metadata={_KEY: decl})


def declaration(f: dataclasses.Field) -> Declaration:
    """The field's declaration (an unconstrained one for a plain dataclass field)."""
    return f.metadata.get(_KEY) or Declaration(Bounds())


def field_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` read from the source of ``cls`` and its bases (the string
    literal under each annotated field); empty where the source is not available."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, nxt in zip(body, body[1:]):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


@dataclass
class Config:
    """Base of every checked config: fields from :func:`param`, checked when built."""

    label: ClassVar[str] = ""
    """How messages name this config (a method's name); the class name when empty."""
    noun: ClassVar[str] = "field"
    """What messages call one of its fields (a method's: 'hyperparameter')."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            why = declaration(f).bounds.violation(getattr(self, f.name))
            if why:
                raise ValueError(self.explain(f.name, f"{getattr(self, f.name)!r} {why}"))

    @classmethod
    def explain(cls, name: str, problem: str) -> str:
        """A one-line message about field ``name``, with its docstring."""
        doc = field_docs(cls).get(name, "")
        return f"{cls.label or cls.__name__}.{name} = {problem}" + (f" ({name}: {doc})" if doc else "")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def build(cls, values: dict | None = None, where: str = "") -> Config:
        """An instance from plain data (YAML, ``--set``): names checked, values coerced to
        the type of each default, ranges checked."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            place = f" ({where})" if where else ""
            raise ValueError(f"unknown {cls.noun}(s) {unknown} for {cls.label or cls.__name__}{place}; "
                             f"valid: {', '.join(cls.field_names())}")
        defaults = {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls)}
        return cls(**{k: _coerce(cls, k, v, defaults[k]) for k, v in values.items()})

    @classmethod
    def quick(cls, **overrides) -> Config:
        """The config with every field's ``quick`` value: tiny budgets for tests."""
        values = {f.name: declaration(f).quick for f in dataclasses.fields(cls)
                  if declaration(f).quick is not None}
        return cls.build({**values, **overrides}, where="quick values")

    def replace(self, **changes) -> Config:
        """A copy with ``changes`` applied (coerced and checked like :meth:`build`)."""
        return type(self).build({**self.to_dict(), **changes})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def changed(self) -> dict:
        """The fields whose values differ from the class's defaults (what a report names)."""
        default = type(self)().to_dict()
        return {k: v for k, v in self.to_dict().items() if v != default[k]}

    @classmethod
    def describe(cls) -> list[tuple[str, str, str, str]]:
        """``(name, default, accepted values, docstring)`` for every field."""
        docs = field_docs(cls)
        inst = cls()
        return [(f.name, repr(getattr(inst, f.name)), declaration(f).bounds.describe(),
                 docs.get(f.name, "")) for f in dataclasses.fields(cls)]


def _coerce(cls: type[Config], key: str, value, default):
    """``value`` as the type of ``default`` (YAML may give 1e-4 as a string, 1 as an int)."""
    kind = type(default)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(cls.explain(key, f"{value!r} must be true or false"))
        return value
    if kind in (int, float) and not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is not None and (kind is float or number.is_integer()):
            return kind(number)
        word = "an integer" if kind is int else "a number"
        raise ValueError(cls.explain(key, f"{value!r} must be {word}"))
    if kind is str and not isinstance(value, str):
        raise ValueError(cls.explain(key, f"{value!r} must be a string"))
    return value
