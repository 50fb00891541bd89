"""Submit from the command line: build, push the kernel, wait for it, submit its output.

The competition is a code competition: the notebook itself is submitted, and Kaggle
re-runs it on the hidden data. The flow drives the ``kaggle`` CLI:

1. build the notebook into ``submissions/<slug>/`` and write ``kernel-metadata.json``
   (private, GPU on, internet **off** written explicitly because the CLI defaults it to
   on, the competition as a data source, the accelerator as ``machine_shape``);
2. ``kaggle kernels push -p DIR``: read the version from
   ``Kernel version N successfully pushed.``;
3. poll ``kaggle kernels status USER/SLUG`` (``USER/SLUG has status "STATUS"``) until
   it completes, fails or the timeout passes;
4. ``kaggle competitions submit neurips-2023-machine-unlearning -f submission.zip
   -k USER/SLUG -v N -m MESSAGE``.

Every failure (no CLI, no credentials, a failed push, a failed kernel) raises
:class:`SubmitError` with what to do next.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from unlearnkit.atomic import write_json

from .runtime.settings import COMPETITION

PUSHED_RE = re.compile(r"Kernel version (\d+) successfully pushed")
STATUS_RE = re.compile(r'has status "([^"]+)"')
DONE, FAILED = {"complete"}, {"error", "cancel_requested", "cancel_acknowledged", "cancelled"}
CREDENTIALS_HELP = (
    "no Kaggle credentials found: create a token at https://www.kaggle.com/settings "
    "(API, Create New Token) and save it as ~/.kaggle/kaggle.json (chmod 600), or set "
    "KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY"
)


class SubmitError(RuntimeError):
    """A step of the submission failed; the message says what to do."""


@dataclass
class SubmitOptions:
    """How to push and submit (the ``unlearnkit submit`` options)."""

    slug: str = "unlearnkit-submission"
    title: str | None = None
    message: str = "unlearnkit submission"
    user: str | None = None
    accelerator: str = "NvidiaTeslaP100"
    folder: str | None = None
    timeout_s: float = 9 * 3600
    poll_s: float = 60.0
    wait: bool = True


# --- the CLI and the credentials ------------------------------------------------------

def find_kaggle() -> str:
    """The ``kaggle`` executable: first on PATH, else beside this Python (the venv)."""
    found = shutil.which("kaggle")
    if found:
        return found
    beside = Path(sys.executable).with_name("kaggle")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise SubmitError("the kaggle CLI is not installed: `pip install kaggle` "
                      "(it is in requirements.txt: `make setup` installs it)")


def run_cli(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the CLI, capturing its output."""
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def output_of(proc: subprocess.CompletedProcess) -> str:
    return (proc.stdout or "") + (proc.stderr or "")


def check_cli(kaggle: str) -> str:
    """``kaggle --version``; raise when the CLI cannot even start."""
    proc = run_cli([kaggle, "--version"], timeout=120)
    if proc.returncode != 0:
        raise SubmitError(f"the kaggle CLI at {kaggle} does not run (exit {proc.returncode}): "
                          f"{_tail(output_of(proc))}\nReinstall it: pip install --force-reinstall "
                          f"kaggle")
    return output_of(proc).strip()


def config_dir(environ: dict | None = None) -> Path:
    """``$KAGGLE_CONFIG_DIR`` or ``~/.kaggle``."""
    env = os.environ if environ is None else environ
    return Path(env.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")


def credentials(environ: dict | None = None) -> tuple[str, str | None]:
    """(where the credentials are, the user name they give, if any); raise if none."""
    env = os.environ if environ is None else environ
    folder = config_dir(env)
    user = env.get("KAGGLE_USERNAME") or None
    if env.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN", user
    if (folder / "access_token").is_file():
        return str(folder / "access_token"), user
    if (folder / "kaggle.json").is_file():
        try:
            data = json.loads((folder / "kaggle.json").read_text())
        except ValueError:
            raise SubmitError(f"{folder / 'kaggle.json'} is not valid JSON; download a fresh "
                              f"token from https://www.kaggle.com/settings") from None
        return str(folder / "kaggle.json"), user or data.get("username")
    if user and env.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME and KAGGLE_KEY", user
    raise SubmitError(CREDENTIALS_HELP)


# --- the kernel folder ----------------------------------------------------------------

def slugify(title: str) -> str:
    """Kaggle's slug of a title: lower case, runs of other characters become one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def kernel_metadata(user: str, slug: str, title: str, code_file: str,
                    accelerator: str | None) -> dict:
    """``kernel-metadata.json`` for a private GPU notebook with the internet off."""
    meta = {
        "id": f"{user}/{slug}",
        "title": title,
        "code_file": code_file,
        "language": "python",
        "kernel_type": "notebook",
        "is_private": True,
        "enable_gpu": True,
        "enable_tpu": False,
        "enable_internet": False,
        "dataset_sources": [],
        "competition_sources": [COMPETITION],
        "kernel_sources": [],
        "model_sources": [],
    }
    if accelerator:
        meta["machine_shape"] = accelerator
    return meta


def check_names(slug: str, title: str) -> None:
    """Raise unless ``slug`` is a valid slug and ``title`` slugifies to it."""
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug):
        raise ValueError(f"slug {slug!r} must be lower-case letters and digits joined by '-'")
    if slugify(title) != slug:
        raise ValueError(f"title {title!r} slugifies to {slugify(title)!r}, not the slug "
                         f"{slug!r}: Kaggle would rename the kernel; pick a matching title")
    if len(title) < 5:
        raise ValueError(f"title {title!r} is too short: Kaggle wants at least 5 characters")


def prepare_folder(opts: SubmitOptions, user: str, method: str | None,
                   hyperparameters: dict | None) -> Path:
    """Build the notebook into the kernel folder and write its metadata; return the folder."""
    from ..paths import check_work_dir, mark_output
    from .notebook import build_notebook, repo_root

    title = opts.title or opts.slug.replace("-", " ")
    check_names(opts.slug, title)
    folder = check_work_dir(opts.folder or repo_root() / "submissions" / opts.slug,
                            option="--dir")
    folder.mkdir(parents=True, exist_ok=True)
    mark_output(folder, "submit")
    code_file = f"{opts.slug}.ipynb"
    build_notebook(out=folder / code_file, method=method, hyperparameters=hyperparameters)
    write_json(folder / "kernel-metadata.json",
               kernel_metadata(user, opts.slug, title, code_file, opts.accelerator))
    return folder


# --- push, wait, submit ---------------------------------------------------------------

def push(kaggle: str, folder: Path) -> int:
    """``kaggle kernels push -p folder``; the version number it pushed."""
    proc = run_cli([kaggle, "kernels", "push", "-p", str(folder)])
    text = output_of(proc)
    print(text.strip())
    m = PUSHED_RE.search(text)
    if proc.returncode != 0 or not m:
        raise SubmitError(
            f"kaggle kernels push failed (exit {proc.returncode}): {_tail(text)}\nCheck "
            f"{folder / 'kernel-metadata.json'}, that you joined the competition and accepted "
            f"its rules (https://www.kaggle.com/competitions/{COMPETITION}/rules), and your "
            f"weekly GPU quota; then run the command again"
        )
    return int(m.group(1))


def parse_status(text: str) -> str | None:
    """``complete`` from ``u/s has status "complete"`` or ``"KernelWorkerStatus.COMPLETE"``."""
    m = STATUS_RE.search(text)
    return m.group(1).rsplit(".", 1)[-1].strip().lower() if m else None


def wait_for(kaggle: str, ref: str, timeout_s: float, poll_s: float, *,
             sleep=time.sleep, clock=time.monotonic) -> str:
    """Poll ``kaggle kernels status ref`` until it completes; raise when it fails or hangs."""
    start, failures, status = clock(), 0, "unknown"
    while True:
        proc = run_cli([kaggle, "kernels", "status", ref], timeout=300)
        text = output_of(proc)
        found = parse_status(text) if proc.returncode == 0 else None
        failures = 0 if found else failures + 1
        if failures >= 5:
            raise SubmitError(f"kaggle kernels status {ref} failed 5 times in a row: "
                              f"{_tail(text)}; check your connection, then run it yourself")
        status = found or status
        if status in DONE:
            return status
        if status in FAILED:
            raise SubmitError(
                f"the kernel {ref} ended with status {status!r}: {_tail(text)}\nRead its log "
                f"at https://www.kaggle.com/code/{ref} (or `kaggle kernels output {ref} -p DIR`); "
                f"run `make kaggle-local` to reproduce it here"
            )
        if clock() - start > timeout_s:
            raise SubmitError(
                f"the kernel {ref} is still {status!r} after {timeout_s:.0f} s; it keeps running "
                f"on Kaggle. When it is complete, submit it with: kaggle competitions submit "
                f"{COMPETITION} -f submission.zip -k {ref} -v VERSION -m MESSAGE"
            )
        sleep(poll_s)


def submit_version(kaggle: str, ref: str, version: int, message: str) -> str:
    """``kaggle competitions submit`` of the notebook version's ``submission.zip``."""
    proc = run_cli([kaggle, "competitions", "submit", COMPETITION, "-f", "submission.zip",
                    "-k", ref, "-v", str(version), "-m", message])
    text = output_of(proc)
    print(text.strip())
    if proc.returncode != 0 or "error" in text.lower():
        raise SubmitError(
            f"kaggle competitions submit failed (exit {proc.returncode}): {_tail(text)}\nThe "
            f"notebook ran; five submissions a day are allowed. Retry with: kaggle competitions "
            f"submit {COMPETITION} -f submission.zip -k {ref} -v {version} -m '{message}'"
        )
    return text.strip()


def submit(opts: SubmitOptions, method: str | None = None,
           hyperparameters: dict | None = None) -> dict:
    """The whole flow; a summary dict (kernel, version, status, folder)."""
    kaggle = find_kaggle()
    check_cli(kaggle)
    where, user = credentials()
    user = opts.user or user
    if not user:
        raise SubmitError(f"credentials from {where} give no user name: pass --user NAME or "
                          f"set KAGGLE_USERNAME")
    folder = prepare_folder(opts, user, method, hyperparameters)
    ref = f"{user}/{opts.slug}"
    version = push(kaggle, folder)
    result = {"kernel": ref, "version": version, "folder": str(folder), "status": "pushed"}
    if not opts.wait:
        return result
    result["status"] = wait_for(kaggle, ref, opts.timeout_s, opts.poll_s)
    result["submitted"] = submit_version(kaggle, ref, version, opts.message)
    return result


def _tail(text: str, n: int = 600) -> str:
    """The last ``n`` characters of ``text``, stripped."""
    text = text.strip()
    return text if len(text) <= n else "..." + text[-n:]
