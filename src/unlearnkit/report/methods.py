"""The README's method table, generated from the registry (``unlearnkit list --markdown``).

The table sits in README.md between :data:`BEGIN` and :data:`END`; ``make readme``
(``unlearnkit list --markdown --into README.md``) rewrites it, and a test checks that it
is current. Edit a method's ``summary`` in its file, never the table.
"""

from __future__ import annotations

from pathlib import Path

from ..atomic import write_text

COMMAND = "make readme"
BEGIN = ("<!-- methods: generated from the registry by `make readme` "
         "(unlearnkit list --markdown --into README.md); edit the method files, not this -->")
END = "<!-- end of the generated methods -->"


def markdown_table() -> str:
    """Every registered method as a Markdown table: name, scenarios served, summary."""
    from ..methods import SCENARIOS, get_method, list_methods

    lines = ["| method | serves | what it does (every setting, its range and source: "
             "`unlearnkit list <name>`) |", "| --- | --- | --- |"]
    for name in list_methods():
        spec = get_method(name)
        served = ", ".join(s for s in SCENARIOS if s in spec.scenarios)
        lines.append(f"| `{name}` | {served} | {spec.summary.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def splice(text: str, table: str) -> str:
    """``text`` with the part between the markers replaced by ``table``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"the file must hold the markers once each, in order:\n{BEGIN}\n{END}")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{table}{END}{tail}"


def write_into(path: str | Path) -> bool:
    """Rewrite the table inside ``path``; True when it changed."""
    path = Path(path)
    old = path.read_text()
    new = splice(old, markdown_table())
    if new != old:
        write_text(path, new)
    return new != old
