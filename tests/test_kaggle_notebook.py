"""The notebook builder and the inlined kit: contents, Kaggle-compatibility, drift, config."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from unlearnkit.assignments import parse_assignments
from unlearnkit.kaggle import notebook as nbk

ROOT = nbk.repo_root()

# Third-party packages the inlined kit may import: all preinstalled on Kaggle's image.
KAGGLE_PACKAGES = {"torch", "torchvision", "numpy", "pandas", "PIL", "tqdm", "yaml", "scipy",
                   "sklearn", "timm"}  # timm: imported only for a timm:<name> model

# Names that exist only in torch/torchvision newer than 2.4 / 0.19 (Kaggle's image may be
# that old). A smoke alarm, not a proof: it catches the usual suspects, not every new API.
NEWER_THAN_TORCH_2_4 = {
    "torch.accelerator": "2.6",
    "nn.Buffer": "2.5",
    "flex_attention": "2.5",
    "set_stance": "2.6",
    "safe_globals": "2.5 (context manager)",
    "get_total_norm": "2.6",
    "clip_grads_with_norm_": "2.6",
    "export_for_training": "2.5",
    "optim.Muon": "2.9",
    "float8_e8m0fnu": "2.7",
    "float4_e2m1fn": "2.8",
    "enable_gqa": "2.5",
    "nested_compile_region": "2.8",
    "in_order=": "2.6 (DataLoader)",
    "torch.distributed.tensor": "2.5 (public DTensor)",
    "triton_op": "2.6",
    "torch.nn.attention.varlen": "2.9",
}


@pytest.fixture(scope="module")
def kit(built_notebook) -> dict[str, bytes]:
    """The files a freshly built notebook inlines (decoded from the notebook itself)."""
    nb = nbformat.read(str(built_notebook), as_version=4)
    cell = next(c for c in nb.cells if nbk.KIT_RE.search(c.source))
    return nbk.unpack(nbk.KIT_RE.search(cell.source).group(0).split('"""')[1])


def test_kit_holds_what_the_notebook_imports_and_nothing_heavy(kit):
    names = set(kit)
    for needed in ("src/unlearnkit/kaggle/runtime/settings.py", "src/unlearnkit/kaggle/runtime/dataset.py",
                   "src/unlearnkit/kaggle/runtime/checkpoints.py", "src/unlearnkit/kaggle/runtime/guard.py",
                   "src/unlearnkit/models.py", "src/unlearnkit/atomic.py",
                   "src/unlearnkit/methods/__init__.py", "src/unlearnkit/data/loaders.py"):
        assert needed in names
    methods = {p.name for p in (ROOT / "src/unlearnkit/methods").glob("*.py")}
    assert {Path(n).name for n in names if "/methods/" in n and n.endswith(".py")} == methods
    configs = ROOT / "src/unlearnkit/configs/methods"
    yamls = {f"src/unlearnkit/configs/methods/{p.name}" for p in configs.glob("*.yaml")}
    assert yamls <= names
    for heavy in ("pipeline", "jobs", "context", "cli", "kaggle/notebook", "kaggle/submit",
                  "kaggle/mock", "kaggle/local", "kaggle/commands"):
        assert f"src/unlearnkit/{heavy}.py" not in names


def _python_sources(kit):
    return {n: data.decode() for n, data in kit.items() if n.endswith(".py")}


def test_kit_imports_only_what_kaggle_has(kit):
    stdlib = set(sys.stdlib_module_names)
    for name, text in _python_sources(kit).items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                assert top in stdlib | KAGGLE_PACKAGES | {"unlearnkit", "__future__"}, \
                    f"{name} imports {top}, which Kaggle's image may lack"


def test_kit_is_python_3_10_syntax(kit):
    for name, text in _python_sources(kit).items():
        ast.parse(text, filename=name, feature_version=(3, 10))


def test_kit_uses_no_api_newer_than_torch_2_4(kit):
    for name, text in _python_sources(kit).items():
        for needle, version in NEWER_THAN_TORCH_2_4.items():
            assert needle not in text, f"{name} uses {needle} (torch {version})"


def test_kit_imports_from_the_unpacked_copy(tmp_path, kit):
    """Unpacked alone, the kit imports, discovers every method and resolves its config."""
    for name, data in kit.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1] + '/src')\n"
        "import unlearnkit, unlearnkit.methods as m\n"
        "from unlearnkit.kaggle.runtime.settings import check_method\n"
        "assert unlearnkit.__file__.startswith(sys.argv[1]), unlearnkit.__file__\n"
        "print(len(m.list_methods()), check_method('bad_teacher', {}).lr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    count, _ = out.stdout.split()
    assert int(count) >= 2


def test_parse_assignments():
    assert parse_assignments(["lr=1e-3", "epochs=2", "mode=fast", "flag=true",
                                  "xs=[1, 2]"]) == \
        {"lr": 0.001, "epochs": 2, "mode": "fast", "flag": True, "xs": [1, 2]}
    with pytest.raises(ValueError, match="key=value"):
        parse_assignments(["lr"])


def test_set_config_rewrites_only_the_named_lines():
    code = 'METHOD = "bad_teacher"  # a note\nHYPERPARAMETERS = {}  # e.g. {"lr": 1e-4}\n'
    new = nbk.set_config(code, method="finetune", hyperparameters={"lr": 0.01})
    assert new == "METHOD = 'finetune'  # a note\nHYPERPARAMETERS = {'lr': 0.01}  # e.g. {\"lr\": 1e-4}\n"


def test_build_with_method_and_overrides(tmp_path):
    out = nbk.build_notebook(out=tmp_path / "nb.ipynb", method="finetune",
                             hyperparameters={"lr": 0.002}, num_checkpoints=7)
    config = nbformat.read(str(out), as_version=4).cells[0].source
    assert re.search(r"^METHOD = 'finetune'", config, re.M)
    assert re.search(r"^HYPERPARAMETERS = \{'lr': 0.002\}", config, re.M)
    assert re.search(r"^NUM_CHECKPOINTS = 7", config, re.M)


def test_build_rejects_bad_configuration(tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        nbk.build_notebook(out=tmp_path / "a.ipynb", method="no_such_method")
    with pytest.raises(ValueError, match="sample-level"):
        nbk.build_notebook(out=tmp_path / "b.ipynb", method="linear_filtration")
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        nbk.build_notebook(out=tmp_path / "c.ipynb", method="finetune",
                           hyperparameters={"no_such_knob": 1})
    assert not list(tmp_path.iterdir())


def test_build_is_deterministic(tmp_path):
    a = nbk.build_notebook(out=tmp_path / "a.ipynb")
    b = nbk.build_notebook(out=tmp_path / "b.ipynb")
    assert a.read_text() == b.read_text()


def test_script_holds_every_code_cell(built_notebook):
    script = nbk.to_script(built_notebook)
    compile(script, "submission_script.py", "exec")
    assert "KIT_ZIP_BASE64" in script and "SubmissionZip" in script


def test_first_cell_is_the_configuration(built_notebook):
    first = nbformat.read(str(built_notebook), as_version=4).cells[0]
    assert first.cell_type == "code"
    for line in ("METHOD = ", "HYPERPARAMETERS = {}", "NUM_CHECKPOINTS = 512",
                 "TIME_BUDGET_HOURS = 7.5"):
        assert re.search(rf"^{re.escape(line)}", first.source, re.M), line
