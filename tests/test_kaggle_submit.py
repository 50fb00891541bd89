"""``unlearnkit submit`` against a fake ``kaggle`` executable that answers like the real CLI."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from unlearnkit.cli import main
from unlearnkit.kaggle import submit as sub

FAKE = textwrap.dedent('''\
    #!{python}
    """A stand-in for the kaggle CLI: logs its arguments, answers like kaggle 2.x."""
    import json, os, shutil, sys
    log = os.environ["FAKE_KAGGLE_LOG"]
    mode = os.environ.get("FAKE_KAGGLE_MODE", "ok")
    args = sys.argv[1:]
    with open(log, "a") as f:
        f.write(json.dumps(args) + "\\n")
    if args == ["--version"]:
        if mode == "broken":
            print("ModuleNotFoundError: No module named 'six'", file=sys.stderr)
            sys.exit(1)
        print("Kaggle API 2.2.5")
    elif args[:2] == ["kernels", "push"]:
        shutil.copy(os.path.join(args[args.index("-p") + 1], "kernel-metadata.json"),
                    log + ".metadata.json")
        if mode == "push_fail":
            print("403 Client Error: Forbidden", file=sys.stderr)
            sys.exit(1)
        print("Kernel version 7 successfully pushed.  Please check progress at "
              "https://www.kaggle.com/code/alice/my-unlearning")
    elif args[:2] == ["kernels", "status"]:
        polls = log + ".polls"
        n = int(open(polls).read()) if os.path.exists(polls) else 0
        open(polls, "w").write(str(n + 1))
        final = "ERROR" if mode == "kernel_error" else "COMPLETE"
        print(f'{{args[2]}} has status "KernelWorkerStatus.{{"RUNNING" if n < 2 else final}}"')
        if n >= 2 and mode == "kernel_error":
            print('Failure message: "Your notebook tried to allocate more memory"')
    elif args[:2] == ["competitions", "submit"]:
        print("Successfully submitted to NeurIPS 2023 - Machine Unlearning")
    else:
        print(f"unexpected arguments {{args}}", file=sys.stderr)
        sys.exit(2)
    ''')


@pytest.fixture
def fake_kaggle(tmp_path, monkeypatch):
    """A fake ``kaggle`` first on PATH, credentials from the environment, a log to read."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "kaggle"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "kaggle.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_KAGGLE_LOG", str(log))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", "secret")
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return {"log": log, "calls": calls, "dir": tmp_path / "kernel"}


def _submit(fake, *extra) -> int:
    return main(["submit", "--slug", "my-unlearning", "--dir", str(fake["dir"]), "--poll", "0",
                 "--message", "try 1", *extra])


def test_push_wait_submit(fake_kaggle):
    assert _submit(fake_kaggle, "--method", "finetune", "--set", "lr=0.002") == 0
    calls = fake_kaggle["calls"]()
    assert calls[0] == ["--version"]
    assert calls[1] == ["kernels", "push", "-p", str(fake_kaggle["dir"])]
    assert calls[2:5] == [["kernels", "status", "alice/my-unlearning"]] * 3
    assert calls[5] == ["competitions", "submit", "neurips-2023-machine-unlearning",
                        "-f", "submission.zip", "-k", "alice/my-unlearning", "-v", "7",
                        "-m", "try 1"]
    meta = json.loads((fake_kaggle["log"].parent / "kaggle.log.metadata.json").read_text())
    assert meta["id"] == "alice/my-unlearning" and meta["title"] == "my unlearning"
    assert meta["enable_internet"] is False and meta["enable_gpu"] is True
    assert meta["is_private"] is True
    assert meta["competition_sources"] == ["neurips-2023-machine-unlearning"]
    assert meta["kernel_type"] == "notebook" and meta["language"] == "python"
    assert meta["machine_shape"] == "NvidiaTeslaP100"
    notebook = (fake_kaggle["dir"] / meta["code_file"]).read_text()
    assert "METHOD = 'finetune'" in notebook and "{'lr': 0.002}" in notebook


def test_missing_cli(fake_kaggle, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    monkeypatch.setattr(sub.sys, "executable", str(tmp_path / "nowhere" / "python"))
    assert _submit(fake_kaggle) == 2
    assert "pip install kaggle" in capsys.readouterr().err


def test_broken_cli(fake_kaggle, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_KAGGLE_MODE", "broken")
    assert _submit(fake_kaggle) == 2
    err = capsys.readouterr().err
    assert "does not run" in err and "six" in err and "reinstall" in err


def test_missing_credentials(fake_kaggle, monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    assert _submit(fake_kaggle) == 2
    assert "kaggle.json" in capsys.readouterr().err
    assert all(c == ["--version"] for c in fake_kaggle["calls"]())  # nothing pushed


def test_credentials_sources(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    assert sub.credentials({"KAGGLE_CONFIG_DIR": str(cfg), "KAGGLE_API_TOKEN": "t"})[0] == \
        "KAGGLE_API_TOKEN"
    (cfg / "kaggle.json").write_text(json.dumps({"username": "bob", "key": "k"}))
    assert sub.credentials({"KAGGLE_CONFIG_DIR": str(cfg)})[1] == "bob"


def test_failed_push(fake_kaggle, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_KAGGLE_MODE", "push_fail")
    assert _submit(fake_kaggle) == 2
    err = capsys.readouterr().err
    assert "kaggle kernels push failed" in err and "rules" in err and "403" in err


def test_failed_kernel_is_not_submitted(fake_kaggle, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_KAGGLE_MODE", "kernel_error")
    assert _submit(fake_kaggle) == 2
    err = capsys.readouterr().err
    assert "ended with status 'error'" in err and "allocate more memory" in err
    assert not any(c[0] == "competitions" for c in fake_kaggle["calls"]())


def test_timeout_says_how_to_submit_later(fake_kaggle, capsys):
    assert _submit(fake_kaggle, "--timeout", "0") == 2
    err = capsys.readouterr().err
    assert "still 'running'" in err and "kaggle competitions submit" in err


def test_names_and_status_parsing():
    assert sub.slugify("My Unlearning: v2!") == "my-unlearning-v2"
    with pytest.raises(ValueError, match="slugifies"):
        sub.check_names("my-unlearning", "Something else")
    with pytest.raises(ValueError, match="lower-case"):
        sub.check_names("My_Slug", "My_Slug")
    assert sub.parse_status('a/b has status "complete"') == "complete"
    assert sub.parse_status('a/b has status "KernelWorkerStatus.CANCEL_ACKNOWLEDGED"') == \
        "cancel_acknowledged"
    assert sub.parse_status("nonsense") is None


def test_a_kernel_folder_the_kit_did_not_make_is_refused_and_kept(fake_kaggle, capsys):
    folder = fake_kaggle["dir"]
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert _submit(fake_kaggle) == 2
    assert "--dir" in capsys.readouterr().err
    assert not any(c[:2] == ["kernels", "push"] for c in fake_kaggle["calls"]()), "nothing pushed"
    assert (folder / "notes.txt").read_text() == "mine"


def test_the_kits_own_kernel_folder_is_reused(fake_kaggle):
    assert _submit(fake_kaggle) == 0
    assert _submit(fake_kaggle) == 0, "a second submit reuses the folder the first one made"
