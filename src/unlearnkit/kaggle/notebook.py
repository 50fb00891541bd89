"""Build the self-contained submission notebook from its readable jupytext source.

``notebooks/submission.py`` (percent format) is the source a person reads and edits.
The build fills two things in: the configuration cell (method, hyperparameters,
checkpoints, budget; from ``--method`` / ``--set``) and the kit cell, a base64 zip of
every ``unlearnkit`` module the notebook imports, followed transitively, plus the whole
method registry (it discovers its modules at import time) and the package's method
configs (``unlearnkit/configs/methods/*.yaml``). The zip mirrors the repository layout
(``src/unlearnkit/...``), so the registry finds its YAML files as package data. The build is
deterministic: building twice gives the same notebook. The built notebook is not
committed: ``make notebook``, ``make submit`` and ``make kaggle-local`` build it afresh.
"""

from __future__ import annotations

import ast
import base64
import io
import re
import zipfile
from pathlib import Path

from unlearnkit.atomic import write_text

PACKAGE = "unlearnkit"
ALWAYS_WHOLE = ("unlearnkit.methods",)  # packages that import their modules by discovery
KIT_VAR = "KIT_ZIP_BASE64"
KIT_RE = re.compile(rf'^{KIT_VAR} = """\n.*?"""$', re.S | re.M)
CONFIG_KEYS = {
    "method": "METHOD",
    "hyperparameters": "HYPERPARAMETERS",
    "num_checkpoints": "NUM_CHECKPOINTS",
    "budget_hours": "TIME_BUDGET_HOURS",
    "guard_after_runs": "GUARD_AFTER_RUNS",
    "loader": "LOADER",
}


def repo_root() -> Path:
    """The repository holding ``src/unlearnkit`` (the package is installed editable)."""
    return Path(__file__).resolve().parents[3]


def default_source() -> Path:
    return repo_root() / "notebooks" / "submission.py"


def default_output() -> Path:
    return repo_root() / "notebooks" / "submission.ipynb"


# --- which modules the notebook needs -------------------------------------------------

def module_path(src: Path, module: str) -> Path | None:
    """The file of ``module`` under ``src`` (a module file or a package's ``__init__``)."""
    base = src.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Absolute names of the ``unlearnkit`` modules (or names within them) ``tree`` imports."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # kept if it is a module
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def kit_modules(src: Path, roots: set[str]) -> list[str]:
    """The transitive closure of ``roots`` over imports, with parent packages; sorted."""
    todo = set(roots)
    for whole in ALWAYS_WHOLE:
        pkg_dir = src.joinpath(*whole.split("."))
        todo |= {f"{whole}.{p.stem}" for p in pkg_dir.glob("*.py") if p.stem != "__init__"}
    done: set[str] = set()
    while todo:
        module = todo.pop()
        path = module_path(src, module)
        if module in done or path is None:
            continue  # a name imported from a module, not a module itself
        done.add(module)
        parts = module.split(".")
        todo |= {".".join(parts[:k]) for k in range(1, len(parts))}
        tree = ast.parse(path.read_text(), str(path))
        todo |= imported_modules(tree, module, path.name == "__init__.py") - done
    return sorted(done)


def notebook_roots(source_text: str) -> set[str]:
    """The ``unlearnkit`` modules the notebook source imports."""
    return imported_modules(ast.parse(source_text), "__main__", False)


def kit_files(root: Path, roots: set[str]) -> dict[str, bytes]:
    """``{relative path: bytes}``: the modules of the closure and the method YAML configs."""
    src = root / "src"
    files = {}
    for module in kit_modules(src, roots):
        path = module_path(src, module)
        files[path.relative_to(root).as_posix()] = path.read_bytes()
    for path in sorted((src / PACKAGE / "configs" / "methods").glob("*.yaml")):
        files[path.relative_to(root).as_posix()] = path.read_bytes()
    return dict(sorted(files.items()))


# --- the kit blob -------------------------------------------------------------------

def pack(files: dict[str, bytes]) -> str:
    """A deterministic zip of ``files`` as base64, in lines of 100 characters."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data, compresslevel=9)
    text = base64.b64encode(buf.getvalue()).decode("ascii")
    return "\n".join(text[i:i + 100] for i in range(0, len(text), 100))


def unpack(blob: str) -> dict[str, bytes]:
    """The files inside a kit blob written by :func:`pack`."""
    with zipfile.ZipFile(io.BytesIO(base64.b64decode("".join(blob.split())))) as zf:
        return {name: zf.read(name) for name in sorted(zf.namelist())}


def fill_kit(code: str, blob: str) -> str:
    """``code`` with the empty kit string replaced by ``blob``."""
    if not KIT_RE.search(code):
        raise ValueError(f'the notebook source lacks the line {KIT_VAR} = """ followed by """')
    return KIT_RE.sub(lambda _: f'{KIT_VAR} = """\n{blob}\n"""', code, count=1)


# --- the configuration cell ---------------------------------------------------------

def set_config(code: str, **values) -> str:
    """The configuration cell ``code`` with ``NAME = value`` lines replaced by ``values``."""
    for key, value in values.items():
        if value is None:
            continue
        var = CONFIG_KEYS[key]
        pattern = re.compile(rf"^{var} = [^#\n]*?(\s*#.*)?$", re.M)
        if not pattern.search(code):
            raise ValueError(f"the configuration cell has no line '{var} = ...'")
        code = pattern.sub(lambda m, n=var, v=value: f"{n} = {v!r}{m.group(1) or ''}", code, count=1)
    return code


def check_config(method: str | None, hyperparameters: dict | None) -> None:
    """Fail at build time, not on Kaggle, for a bad method or hyperparameter name."""
    if method is None and not hyperparameters:
        return
    from unlearnkit.kaggle.runtime.settings import check_method

    check_method(method or _default_method(), hyperparameters or {})


def config_values(code: str) -> dict:
    """``{NAME: value}`` of the configuration cell's ``NAME = <literal>`` lines."""
    values = {}
    for node in ast.parse(code).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in CONFIG_KEYS.values()):
            name = node.targets[0].id
            try:
                values[name] = ast.literal_eval(node.value)
            except ValueError:
                raise ValueError(f"the configuration cell's {name} is not a plain value: "
                                 f"{ast.unparse(node.value)}") from None
    return values


def check_numbers(code: str, **given) -> None:
    """Refuse an impossible NUM_CHECKPOINTS, TIME_BUDGET_HOURS or GUARD_AFTER_RUNS: those
    ``given`` (not None), else the configuration cell ``code``'s. The notebook runs the same
    check again (:func:`unlearnkit.kaggle.runtime.settings.check_config`)."""
    from unlearnkit.kaggle.runtime.settings import check_config as check_settings

    values = config_values(code)
    keys = ("num_checkpoints", "budget_hours", "guard_after_runs")
    for key in keys:
        if given.get(key) is not None:
            values[CONFIG_KEYS[key]] = given[key]
        elif CONFIG_KEYS[key] not in values:
            raise ValueError(f"the configuration cell has no line '{CONFIG_KEYS[key]} = ...'")
    check_settings(*(values[CONFIG_KEYS[k]] for k in keys))


def _default_method() -> str:
    """The METHOD written in the notebook source."""
    source = default_source()
    m = re.search(r'^METHOD = "([^"]+)"', source.read_text(), re.M)
    if not m:
        raise ValueError(f"{source} has no line 'METHOD = \"<name>\"' in its configuration cell")
    return m.group(1)


# --- the notebook -------------------------------------------------------------------

def render(source: Path, *, method: str | None = None, hyperparameters: dict | None = None,
           num_checkpoints: int | None = None, budget_hours: float | None = None,
           guard_after_runs: int | None = None, loader: str | None = None):
    """The notebook (an ``nbformat`` node) built from the jupytext ``source``."""
    import jupytext
    import nbformat

    text = Path(source).read_text()
    nb = jupytext.reads(text, fmt="py:percent")
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    numbers = dict(num_checkpoints=num_checkpoints, budget_hours=budget_hours,
                   guard_after_runs=guard_after_runs)
    check_numbers(code_cells[0].source, **numbers)  # before anything is packed or written
    if loader is not None:
        from unlearnkit.kaggle.runtime.feed import check_loader

        check_loader(loader)
    code_cells[0].source = set_config(code_cells[0].source, method=method,
                                      hyperparameters=hyperparameters, loader=loader, **numbers)
    blob = pack(kit_files(repo_root(), notebook_roots(text)))
    kit_cells = [c for c in code_cells if KIT_RE.search(c.source)]
    if len(kit_cells) != 1:
        raise ValueError(f"{source} must have exactly one {KIT_VAR} cell, found {len(kit_cells)}")
    kit_cells[0].source = fill_kit(kit_cells[0].source, blob)
    for k, cell in enumerate(nb.cells):
        cell.id = f"cell-{k:02d}"  # deterministic ids: a rebuild changes nothing
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nbformat.validate(nb)
    return nb


def build_notebook(source: Path | None = None, out: Path | None = None, *,
                   method: str | None = None, hyperparameters: dict | None = None,
                   num_checkpoints: int | None = None, budget_hours: float | None = None,
                   guard_after_runs: int | None = None, loader: str | None = None) -> Path:
    """Write the built notebook to ``out`` (default ``notebooks/submission.ipynb``) atomically."""
    import nbformat

    check_config(method, hyperparameters)
    nb = render(source or default_source(), method=method, hyperparameters=hyperparameters,
                num_checkpoints=num_checkpoints, budget_hours=budget_hours,
                guard_after_runs=guard_after_runs, loader=loader)
    return write_text(out or default_output(), nbformat.writes(nb) + "\n")


def to_script(ipynb: Path) -> str:
    """The notebook's code cells as one Python script (to run it where Jupyter is not)."""
    import nbformat

    nb = nbformat.read(str(ipynb), as_version=4)
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "code") + "\n"
