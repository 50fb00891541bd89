"""The Kaggle loop on this machine: mock data, the notebook run headless, the score.

:func:`execute_notebook` runs a built notebook with ``nbclient`` (a fresh kernel, the
``UNLEARNKIT_*`` variables pointing it at local folders), as Kaggle runs it;
:func:`kaggle_local` chains mock competition -> notebook -> ``score-submission``
(``make kaggle-local``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from unlearnkit.atomic import write_json

from .runtime.settings import ENV_INPUT_DIR, ENV_NUM_CHECKPOINTS, ENV_OUTPUT_DIR, ENV_WORK_DIR


class NotebookFailed(RuntimeError):
    """A cell of the notebook raised; the message holds its error name and value."""

    def __init__(self, ename: str, evalue: str, outputs: str):
        super().__init__(f"the notebook failed: {ename}: {evalue}")
        self.ename, self.evalue, self.outputs = ename, evalue, outputs


def notebook_env(input_dir: Path, work_dir: Path, output_dir: Path,
                 num_checkpoints: int | None = None) -> dict[str, str]:
    """The ``UNLEARNKIT_*`` variables for a local run, as absolute paths (the kernel may
    run in another folder)."""
    env = {ENV_INPUT_DIR: str(Path(input_dir).resolve()), ENV_WORK_DIR: str(Path(work_dir).resolve()),
           ENV_OUTPUT_DIR: str(Path(output_dir).resolve())}
    if num_checkpoints is not None:
        env[ENV_NUM_CHECKPOINTS] = str(num_checkpoints)
    return env


def outputs_text(nb) -> str:
    """Everything the notebook's cells printed (streams and errors), in order."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if "text" in out:
                parts.append(out["text"])
            elif out.get("output_type") == "error":
                parts.append(f"{out['ename']}: {out['evalue']}")
    return "".join(parts)


def execute_notebook(ipynb: str | os.PathLike, env: dict[str, str], *, cwd: str | None = None,
                     timeout: int = 3600, save_to: str | os.PathLike | None = None):
    """Run ``ipynb`` in a fresh kernel with ``env`` added; return the executed notebook.

    Raises :class:`NotebookFailed` (with the failing cell's error) when a cell raises.
    ``save_to`` keeps the executed notebook (outputs included) for reading afterwards.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(str(ipynb), as_version=4)
    saved = {k: os.environ.get(k) for k in [*env, "KAGGLE_KERNEL_RUN_TYPE"]}
    os.environ.update(env)
    os.environ.pop("KAGGLE_KERNEL_RUN_TYPE", None)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": cwd or os.getcwd()}})
    try:
        client.execute()
    except CellExecutionError as err:
        raise NotebookFailed(err.ename, err.evalue, outputs_text(nb)) from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if save_to is not None:
            write_json(save_to, json.loads(nbformat.writes(nb)))
    return nb


def kaggle_local(out: str | os.PathLike, *, source: str = "digits", root=None,
                 checkpoints: int = 4, epochs: int | None = 2, method: str | None = None,
                 hyperparameters: dict | None = None, device: str | None = None,
                 progress: bool = True) -> dict:
    """Mock data in ``out/input``, the notebook run on it, and the submission's score."""
    from ..paths import check_work_dir, mark_output
    from .mock import make_mock_competition
    from .notebook import build_notebook
    from .score import score_submission

    out = check_work_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    mark_output(out, "kaggle-local")  # the kit's working folder from here on: reruns reuse it
    times = {}
    start = time.time()
    mock_file = out / "input" / "mock.json"
    if mock_file.is_file() and json.loads(mock_file.read_text())["source"] != source:
        raise ValueError(f"{out / 'input'} holds a mock of another source; choose another --out")
    if not mock_file.is_file():
        make_mock_competition(out / "input", source, root=root, epochs=epochs, device=device,
                              progress=progress)
    times["mock_s"] = time.time() - start
    nb = build_notebook(out=out / "submission.ipynb", method=method,
                        hyperparameters=hyperparameters)
    start = time.time()
    env = notebook_env(out / "input", out / "work", out / "output", checkpoints)
    execute_notebook(nb, env, cwd=str(out), save_to=out / "executed.ipynb")
    times["notebook_s"] = time.time() - start
    start = time.time()
    report = score_submission(out / "output" / "submission.zip", out / "input", device=device,
                              progress=progress)
    times["score_s"] = time.time() - start
    report["kaggle_local"] = {"checkpoints": checkpoints, "source": source, **times}
    write_json(out / "report.json", {k: v for k, v in report.items() if not k.startswith("_")})
    return report
